// Network pieces without Nest or another domain: parsing of addresses and URLs (what the
// configuration checks and the upstream module uses), and the HTTP server's front door.
export { parsePort, splitHostPort } from './host-port';
export { parseAllowedOrigin } from './origin';
export { bare, NoProxy, parseProxyUrl } from './proxy';
export type { ProxyServer } from './proxy';
export { DEFAULT_MAX_CONNECTIONS, parseUpstreamUrl } from './upstream-url';
export type { UpstreamTarget } from './upstream-url';
export { basicAuthorization } from './url-credentials';
export { FrontDoor, frontDoorOf, frontDoorServer, hasBody } from './front-door';
export type { FrontAnswer, FrontExchange, FrontObserver, FrontRoute, ServerSettings } from './front-door';
