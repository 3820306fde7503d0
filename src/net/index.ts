// Pure parsing of network addresses and URLs (no Nest, no other domain): what the configuration
// checks and the upstream module uses.
export { parsePort, splitHostPort } from './host-port';
export { parseAllowedOrigin } from './origin';
export { bare, NoProxy, parseProxyUrl } from './proxy';
export type { ProxyServer } from './proxy';
export { DEFAULT_MAX_CONNECTIONS, parseUpstreamUrl } from './upstream-url';
export type { UpstreamTarget } from './upstream-url';
export { basicAuthorization } from './url-credentials';
