import { NcpsConfig } from 'src/config/config';
import { formatBytes } from './status.render';

/** `url` without user, password, query or fragment (any of which may carry a secret). */
export function publicUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * The configuration as the status page shows it: only fields that are never secret, URLs stripped of
 * credentials. Tokens, passwords, keys and the database URL are never read here, only whether a token is set.
 */
export function configSummary(config: NcpsConfig): [string, string][] {
  const storage =
    config.storage.kind === 'local'
      ? `local ${config.storage.path}`
      : `s3 bucket ${config.storage.s3.bucket}${config.storage.s3.endpoint ? ` at ${publicUrl(config.storage.s3.endpoint)}` : ''}`;
  return [
    ['hostname', config.cache.hostname],
    ['upstreams', config.upstream.urls.map(publicUrl).join(', ') || 'none'],
    ['storage', storage],
    ['database', config.database.dialect],
    ['lock backend', config.lock.backend + (config.lock.allowDegradedMode ? ' (degraded mode allowed)' : '')],
    ['max size', config.cache.maxSizeBytes ? formatBytes(config.cache.maxSizeBytes) : 'unlimited'],
    ['max NAR size', formatBytes(config.cache.maxNarSizeBytes)],
    ['LRU schedule', config.cache.lru ? `${config.cache.lru.schedule} (${config.cache.lru.timezone})` : 'none'],
    ['sign narinfos', config.cache.signNarinfo ? 'yes' : 'no'],
    ['uploads', config.cache.allowPut ? 'allowed' : 'disabled'],
    ['deletes', config.cache.allowDelete ? 'allowed' : 'disabled'],
    ['read token', config.cache.getToken ? 'required' : 'none'],
    ['Prometheus /metrics', config.prometheusEnabled ? 'enabled' : 'disabled'],
  ];
}
