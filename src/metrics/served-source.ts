import { ServerResponse } from 'node:http';

/**
 * Where the body of a narinfo or NAR response comes from: `cache`, read from storage (a hit, the
 * upstream bandwidth the cache saves), or `upstream`, fetched for it (a download in progress here
 * or on another instance, a narinfo just fetched).
 */
export type ServedSource = 'cache' | 'upstream';

const SOURCE = Symbol('ncps.servedSource');
type Marked = ServerResponse & { [SOURCE]?: ServedSource };

/** Tells HttpMetrics where the body of `response` comes from; to be called before the body is sent. */
export function markServedSource(response: ServerResponse, source: ServedSource): void {
  (response as Marked)[SOURCE] = source;
}

/** What markServedSource said of `response`; undefined when nothing did. */
export function servedSourceOf(response: ServerResponse): ServedSource | undefined {
  return (response as Marked)[SOURCE];
}
