import { BadRequestError } from 'src/common/errors';
import { ArtifactName, buildTraceName, debugInfoName, listingName, logName, realisationName } from './artifact-name';

type Params = Record<string, string>;

/**
 * Where each kind of artifact is served (Fastify patterns), and how the route's parameters name it.
 * Each also answers under /upload/, where `nix copy --to http://host/upload` sends its uploads.
 * Listings (`<hash>.ls`) are at the root, where the narinfo routes hand them on (see rootFileName).
 */
export const ARTIFACT_ROUTES: ReadonlyArray<{ urls: string[]; parse: (params: Params) => ArtifactName }> = [
  { urls: ['/log/:name', '/upload/log/:name'], parse: (p) => logName(p.name) },
  { urls: ['/realisations/:name', '/upload/realisations/:name'], parse: (p) => realisationName(p.name) },
  { urls: ['/build-trace-v2/:drv/:name', '/upload/build-trace-v2/:drv/:name'], parse: (p) => buildTraceName(p.drv, p.name) },
  { urls: ['/debuginfo/:name', '/upload/debuginfo/:name'], parse: (p) => debugInfoName(p.name) },
];

/** A file at the cache root that is not a narinfo: only listings are. */
export function rootFileName(name: string): ArtifactName {
  if (!name.endsWith('.ls')) throw new BadRequestError('expected <hash>.narinfo or <hash>.ls');
  return listingName(name);
}
