import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, parseAdvertiseUrl, parseListenAddress } from './build-config';
import { renderConfigExample } from './example';
import { ConfigError, parseDuration, parseSize } from './option';
import { OPTIONS } from './options';
import { renderConfigurationReference } from './reference';
import { resolveOptions } from './resolve';

const load = (flags: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}) =>
  buildConfig(resolveOptions({ flags, env }), { hostname: 'box', tempDir: '/tmp', homeDir: '/home/u' });

function yamlFile(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'ncps-cfg-')), 'config.yaml');
  writeFileSync(path, text);
  return path;
}

describe('option parsers', () => {
  it.each([
    ['100ms', 100],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
    ['0', 0],
  ])('parses the Go duration %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['5', '5 minutes', 'm5', '', '1h 30m'])('rejects the duration %p', (text) => {
    expect(() => parseDuration(text)).toThrow(ConfigError);
  });

  it.each([
    ['512', 512],
    ['10K', 10_240],
    ['1G', 1024 ** 3],
    ['2T', 2 * 1024 ** 4],
    ['1.5M', 1.5 * 1024 ** 2],
  ])('parses the size %s', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it('rejects an unknown size unit', () => {
    expect(() => parseSize('10X')).toThrow(/not a size/);
  });

  it.each([
    [':8501', { host: '', port: 8501 }],
    ['127.0.0.1:9000', { host: '127.0.0.1', port: 9000 }],
    ['[::1]:80', { host: '::1', port: 80 }],
  ])('parses the listen address %s', (text, expected) => {
    expect(parseListenAddress(text)).toEqual(expected);
  });

  it('rejects a listen address without port', () => {
    expect(() => parseListenAddress('localhost')).toThrow(/--server-addr/);
  });

  it('leaves the advertise URL to the listening address unless one is given (then without a trailing slash)', () => {
    expect(load().server.advertiseUrl).toBeUndefined();
    expect(load({ 'cache-hostname': 'cache.example.com' }).server.advertiseUrl).toBeUndefined();
    expect(load({ 'server-advertise-url': 'http://ncps-1.internal:8501/' }).server.advertiseUrl).toBe('http://ncps-1.internal:8501');
    expect(parseAdvertiseUrl('https://[fd00::2]:8443/ncps')).toBe('https://[fd00::2]:8443/ncps');
  });

  it.each(['ncps-1:8501', 'ftp://a/', 'http://a:8501/?x=1', 'http://a:8501/#x', 'http://user:secret@a:8501', `http://${'a'.repeat(200)}`])(
    'rejects the advertise URL %p',
    (url) => {
      expect(() => parseAdvertiseUrl(url)).toThrow(/--server-advertise-url/);
    },
  );

  it('does not echo an advertise URL holding credentials', () => {
    expect(() => parseAdvertiseUrl('http://user:s3cr3t@a:8501')).toThrow(/^(?!.*s3cr3t).*credentials/);
  });
});

describe('embedded defaults', () => {
  it('needs no flag at all: SQLite and local storage under the data dir, local locks, cache.nixos.org', () => {
    const sut = load();
    expect(sut.server).toMatchObject({ host: '', port: 8501 });
    expect(sut.cache.hostname).toBe('box');
    expect(sut.database.dialect).toBe('sqlite');
    expect(sut.database.url).toBe(`sqlite:${join(sut.cache.dataDir, 'db', 'ncps.sqlite')}`);
    expect(sut.storage).toEqual({ kind: 'local', path: join(sut.cache.dataDir, 'storage') });
    expect(sut.lock.backend).toBe('local');
    expect(sut.upstream.urls).toEqual(['https://cache.nixos.org']);
    expect(sut.upstream.publicKeys).toEqual(['cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=']);
    expect(sut.lock).toMatchObject({ downloadTtlMs: 300_000, lruTtlMs: 1_800_000, keyPrefix: 'ncps:lock:' });
    expect(sut.lock.retry).toEqual({ maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 2000, jitter: true });
    expect(sut.upstream.netrcFile).toBe('/home/u/.netrc');
  });
});

describe('precedence: flag > file > environment > default', () => {
  const file = yamlFile('cache:\n  hostname: from-file\n  lock:\n    download-lock-ttl: 7m\n');

  it('takes the flag over the file and the environment', () => {
    const sut = load({ config: file, 'cache-hostname': 'from-flag' }, { CACHE_HOSTNAME: 'from-env' });
    expect(sut.cache.hostname).toBe('from-flag');
  });

  it('takes the file over the environment', () => {
    const sut = load({ config: file }, { CACHE_HOSTNAME: 'from-env', CACHE_LOCK_DOWNLOAD_TTL: '9m' });
    expect(sut.cache.hostname).toBe('from-file');
    expect(sut.lock.downloadTtlMs).toBe(7 * 60_000);
  });

  it('takes the environment over the default', () => {
    expect(load({}, { CACHE_LOCK_RETRY_MAX_ATTEMPTS: '7' }).lock.retry.maxAttempts).toBe(7);
  });

  it('reads the file named by NCPS_CONFIG_FILE', () => {
    expect(load({}, { NCPS_CONFIG_FILE: file }).cache.hostname).toBe('from-file');
  });

  it('splits comma lists from the environment and takes YAML lists', () => {
    const listFile = yamlFile('cache:\n  upstream:\n    urls:\n      - http://a.example\n      - http://b.example\n');
    expect(load({ config: listFile }).upstream.urls).toEqual(['http://a.example', 'http://b.example']);
    expect(load({}, { CACHE_UPSTREAM_URLS: 'http://x.example, http://y.example' }).upstream.urls).toEqual([
      'http://x.example',
      'http://y.example',
    ]);
  });
});

describe('validation', () => {
  it('refuses an upstream left without a public key unless it is allowed unsigned', () => {
    const keyless = { 'cache-upstream-url': ['https://a.example/?priority=1'], 'cache-upstream-public-key': [] };
    expect(() => load(keyless)).toThrow(ConfigError);
    expect(() => load(keyless)).toThrow(
      /upstream https:\/\/a.example has no public key.*--cache-upstream-allow-unsigned=https:\/\/a.example/,
    );
    const allowed = load(
      {},
      {
        CACHE_UPSTREAM_URLS: 'https://a.example/?priority=1',
        CACHE_UPSTREAM_PUBLIC_KEYS: '',
        CACHE_UPSTREAM_ALLOW_UNSIGNED: 'https://a.example',
      },
    );
    expect(allowed.upstream.allowUnsigned).toEqual(['https://a.example']);
    expect(() => load({ ...keyless, 'cache-upstream-allow-unsigned': ['https://b.example'] })).toThrow(/is not one of the upstreams/);
  });

  it('takes allowed origins as normalised http(s) origins and refuses anything else', () => {
    const sut = load({}, { CACHE_UPSTREAM_ALLOWED_ORIGINS: 'https://CDN.example:443/, http://10.0.0.1:8080' });
    expect(sut.upstream.allowedOrigins).toEqual(['https://cdn.example', 'http://10.0.0.1:8080']);
    expect(load().upstream.allowedOrigins).toEqual([]);
    for (const bad of ['cdn.example', 'https://cdn.example/nar', 'file:///x', 'https://u:p@cdn.example']) {
      expect(() => load({ 'cache-upstream-allowed-origin': [bad] })).toThrow(/^--cache-upstream-allowed-origin: /);
    }
  });

  it('names the option with a bad value', () => {
    expect(() => load({ 'cache-lock-download-ttl': 'soon' })).toThrow(/--cache-lock-download-ttl: "soon" is not a duration/);
  });

  it('rejects an unknown lock backend with the choices', () => {
    expect(() => load({ 'cache-lock-backend': 'zookeeper' })).toThrow(/one of local, redis, postgres/);
  });

  it('rejects two storage backends', () => {
    expect(() => load({ 'cache-storage-local': '/x', 'cache-storage-s3-bucket': 'b' })).toThrow(/exactly one storage/);
  });

  it('refuses distributed locks on SQLite and explains what HA needs', () => {
    expect(() => load({ 'cache-lock-backend': 'redis', 'cache-redis-addrs': 'r:6379' })).toThrow(
      /cannot share SQLite.*PostgreSQL or MySQL.*S3/s,
    );
  });

  it('reads several Redis addresses as one cluster unless --cache-redis-redlock-quorum, and a CA file as TLS', () => {
    const ha = { 'cache-lock-backend': 'redis', 'cache-database-url': 'postgresql://u:p@h/db', 'cache-storage-s3-bucket': 'b' };
    expect(load({ ...ha, 'cache-redis-addrs': 'a:1,b:2' }).lock.redis).toMatchObject({
      addrs: ['a:1', 'b:2'],
      redlockQuorum: false,
      useTls: false,
    });
    expect(load({ ...ha, 'cache-redis-addrs': 'a:1,b:2' }, { CACHE_REDIS_REDLOCK_QUORUM: 'true' }).lock.redis.redlockQuorum).toBe(true);
    expect(load({ ...ha, 'cache-redis-addrs': 'a:1' }, { CACHE_REDIS_CA_FILE: '/etc/ca.pem' }).lock.redis).toMatchObject({
      useTls: true,
      caFile: '/etc/ca.pem',
    });
    expect(() => load({ ...ha, 'cache-redis-addrs': 'a:1,b:2', 'cache-redis-db': '3' })).toThrow(
      /--cache-redis-db must be 0 with a Redis Cluster/,
    );
    expect(load({ ...ha, 'cache-redis-addrs': 'a:1,b:2', 'cache-redis-db': '3', 'cache-redis-redlock-quorum': 'true' }).lock.redis.db).toBe(
      3,
    );
  });

  it('refuses postgres locks without a PostgreSQL database', () => {
    expect(() => load({ 'cache-lock-backend': 'postgres', 'cache-database-url': 'mysql://u@h/db' })).toThrow(/needs a PostgreSQL database/);
  });

  it('switches to redis when redis addresses are given with local locks, and warns', () => {
    const sut = load({ 'cache-redis-addrs': 'r:6379', 'cache-database-url': 'postgresql://u:p@h/db', 'cache-storage-s3-bucket': 'b' });
    expect(sut.lock.backend).toBe('redis');
    expect(sut.warnings.join('\n')).toMatch(/using the redis lock backend/);
  });

  it('warns that local storage with distributed locks must be one shared directory', () => {
    const sut = load({ 'cache-lock-backend': 'postgres', 'cache-database-url': 'postgresql://u:p@h/db' });
    expect(sut.warnings.join('\n')).toMatch(/same directory.*S3/s);
  });

  it('gives /health details to loopback by default, takes CIDR lists, and names a bad range', () => {
    expect(load().health.detailsFrom).toEqual(['127.0.0.0/8', '::1/128']);
    expect(load({}, { HEALTH_DETAILS_FROM: '10.0.0.0/8, fd00::/8' }).health.detailsFrom).toEqual(['10.0.0.0/8', 'fd00::/8']);
    expect(load({ 'health-details-from': '' }).health.detailsFrom).toEqual([]);
    expect(() => load({ 'health-details-from': '10.0.0.0/40' })).toThrow(/--health-details-from: .*prefix length/);
    expect(() => load({ 'health-details-from': 'localhost' })).toThrow(/--health-details-from: .*not an IP address/);
  });

  it('advertises priority 10 unless --cache-priority, CACHE_PRIORITY or cache.priority says otherwise, never below 0', () => {
    expect(load().cache.priority).toBe(10);
    expect(load({ 'cache-priority': '30' }).cache.priority).toBe(30);
    expect(load({}, { CACHE_PRIORITY: '45' }).cache.priority).toBe(45);
    expect(load({ config: yamlFile('cache:\n  priority: 5\n') }).cache.priority).toBe(5);
    expect(() => load({ 'cache-priority': '-1' })).toThrow('--cache-priority must be at least 0');
  });

  it('requires max-size with an LRU schedule', () => {
    expect(() => load({ 'cache-lru-schedule': '0 2 * * *' })).toThrow(/needs --cache-max-size/);
  });

  it('never echoes a secret value in an error', () => {
    const attempt = () => load({ 'cache-database-url': 'oracle://admin:hunter2@db/x' });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).not.toThrow(/hunter2/);
  });

  it('rejects unknown keys in the config file', () => {
    expect(() => load({ config: yamlFile('cache:\n  hostnme: typo\n') })).toThrow(/unknown key in .*cache\.hostnme/);
  });

  it('rejects a config file that cannot be read', () => {
    expect(() => load({ config: '/nonexistent/ncps.yaml' })).toThrow(/--config: cannot read/);
  });
});

describe('the option table and its documents', () => {
  it('gives every option a unique flag, key and environment variable', () => {
    for (const field of ['flag', 'key', 'env'] as const) {
      const values = OPTIONS.map((o) => o[field]).filter((v) => v !== null);
      expect(new Set(values).size).toBe(values.length);
    }
  });

  it('keeps docs/configuration.md in sync (regenerate with npm run docs:config)', () => {
    const committed = readFileSync(join(__dirname, '../../docs/configuration.md'), 'utf8');
    expect(committed).toBe(renderConfigurationReference());
  });

  it('keeps config/config.example.yaml in sync (regenerate with npm run docs:config)', () => {
    const committed = readFileSync(join(__dirname, '../../config/config.example.yaml'), 'utf8');
    expect(committed).toBe(renderConfigExample());
  });

  it('writes an example file that parses, knows every key, and yields the defaults', () => {
    const fromExample = resolveOptions({ flags: { config: yamlFile(renderConfigExample()) }, env: {} });
    const defaults = resolveOptions({ flags: { config: yamlFile('{}\n') }, env: {} });
    expect({ ...fromExample, config: undefined }).toEqual({ ...defaults, config: undefined });
    for (const o of OPTIONS.filter((x) => x.key !== null)) expect(renderConfigExample()).toContain(`$${o.env})`);
  });
});

describe('upstream proxy options', () => {
  it('reads HTTP_PROXY, HTTPS_PROXY and NO_PROXY, upper case first, else lower case, as Go does', () => {
    const sut = load(
      {},
      {
        HTTPS_PROXY: 'http://upper:3128',
        https_proxy: 'http://lower:3128',
        http_proxy: 'proxy.corp:8080',
        no_proxy: 'a.example, .b.example',
      },
    );
    expect(sut.upstream).toMatchObject({
      httpsProxy: 'http://upper:3128',
      httpProxy: 'proxy.corp:8080',
      noProxy: ['a.example', '.b.example'],
    });
    const none = load({}, {}).upstream;
    expect([none.httpProxy, none.httpsProxy, none.noProxy]).toEqual([undefined, undefined, []]);
  });

  it('lets the flag win over the environment, and refuses an unusable proxy without echoing it', () => {
    expect(load({ 'cache-upstream-https-proxy': 'http://flag:1' }, { HTTPS_PROXY: 'http://env:2' }).upstream.httpsProxy).toBe(
      'http://flag:1',
    );
    expect(() => load({}, { http_proxy: 'https://u:hunter2@proxy.corp' })).toThrow(
      /^--cache-upstream-http-proxy: https proxies are not supported/,
    );
    expect(() => load({}, { http_proxy: 'https://u:hunter2@proxy.corp' })).not.toThrow('hunter2');
    expect(() => load({}, { NO_PROXY: '10.0.0.0/99' })).toThrow('--cache-upstream-no-proxy: "10.0.0.0/99"');
  });
});
