import { repositoryConformance } from './repository.conformance';

repositoryConformance('mysql');
