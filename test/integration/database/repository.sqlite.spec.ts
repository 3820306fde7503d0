import { repositoryConformance } from './repository.conformance';

repositoryConformance('sqlite');
