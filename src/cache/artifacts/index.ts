// Listings, build logs, realisations, build traces and debuginfo: what a binary cache serves besides narinfos and NARs.
export { ArtifactController } from './artifact.controller';
export { ArtifactRoutes } from './artifact.routes';
export { ArtifactService } from './artifact.service';
