import { NoProxy, ProxyServer, parseProxyUrl } from 'src/net';

/**
 * Forward proxies for upstream requests, as corporate networks require: `HTTP_PROXY` for http://
 * upstreams, `HTTPS_PROXY` for https:// ones (reached through a CONNECT tunnel, TLS end to end),
 * `NO_PROXY` for the hosts reached directly. The values come from the configuration (flags, YAML or
 * those environment variables, read in src/config), never from the environment here.
 */

/** The proxies of the configuration, parsed; `proxyFor` says which one, if any, a request goes through. */
export interface ProxySettings {
  http?: ProxyServer;
  https?: ProxyServer;
  noProxy: NoProxy;
}

export function proxySettings(config: { httpProxy?: string; httpsProxy?: string; noProxy: readonly string[] }): ProxySettings {
  const settings: ProxySettings = { noProxy: new NoProxy(config.noProxy) };
  if (config.httpProxy) settings.http = parseProxyUrl(config.httpProxy);
  if (config.httpsProxy) settings.https = parseProxyUrl(config.httpsProxy);
  return settings;
}

/** The proxy a request to `url` goes through: by its scheme, unless NO_PROXY names its host. */
export function proxyFor(url: URL, settings: ProxySettings): ProxyServer | undefined {
  const proxy = url.protocol === 'https:' ? settings.https : settings.http;
  if (!proxy || settings.noProxy.bypasses(url)) return undefined;
  return proxy;
}
