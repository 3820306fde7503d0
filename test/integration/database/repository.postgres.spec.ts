import { repositoryConformance } from './repository.conformance';

repositoryConformance('postgres');
