import { OptionSpec } from './option';

/**
 * The option table: the single source for flags, YAML keys, environment variables, defaults,
 * parsing, `--help` and the configuration reference (docs/configuration.md, kept in sync by a test).
 * Names follow the Go ncps so an operator can swap one for the other without touching configuration.
 */
export const OPTION_GROUPS: ReadonlyArray<{ title: string; options: readonly OptionSpec[] }> = [
  {
    title: 'General',
    options: [
      { flag: 'config', key: null, env: 'NCPS_CONFIG_FILE', kind: 'string', placeholder: 'PATH', defaultText: '$XDG_CONFIG_HOME/ncps/config.yaml if it exists', help: 'YAML configuration file. Precedence: flag > file > environment > default.' },
      { flag: 'log-level', key: 'log.level', env: 'LOG_LEVEL', kind: 'string', default: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'], help: 'Minimum level of log lines.' },
      { flag: 'prometheus-enabled', key: 'prometheus.enabled', env: 'PROMETHEUS_ENABLED', kind: 'boolean', default: 'false', help: 'Serve Prometheus metrics at GET /metrics.' },
      { flag: 'otel-enabled', key: 'otel.enabled', env: 'OTEL_ENABLED', kind: 'boolean', default: 'false', help: 'Send OpenTelemetry traces (OTLP/HTTP) of every request. Off by default: ncps sends no telemetry anywhere unless this is set. The standard OTEL_* variables (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_EXPORTER_OTLP_HEADERS, ...) apply.' },
      { flag: 'otel-endpoint', key: 'otel.endpoint', env: 'OTEL_ENDPOINT', kind: 'string', placeholder: 'URL', defaultText: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318', help: 'OTLP/HTTP base URL of the collector (e.g. http://collector:4318); traces are POSTed to <URL>/v1/traces.' },
    ],
  },
  {
    title: 'Server',
    options: [
      { flag: 'server-addr', key: 'server.addr', env: 'SERVER_ADDR', kind: 'string', default: ':8501', placeholder: 'HOST:PORT', help: 'Address to listen on (an IPv6 address in brackets: [::1]:8501); an empty host listens on every interface.' },
      { flag: 'server-advertise-url', key: 'server.advertise-url', env: 'SERVER_ADVERTISE_URL', kind: 'string', placeholder: 'URL', defaultText: "http://<IP of --server-addr>:<port>, or http://<machine's hostname>:<port> when listening on every interface", help: 'URL at which the other instances reach this one (never the load balancer\'s), to stream downloads in progress here (HA). With a distributed lock backend it is checked at start: a URL that does not reach this instance is logged as an error and shown in /health details.' },
      { flag: 'server-shutdown-timeout', key: 'server.shutdown-timeout', env: 'SERVER_SHUTDOWN_TIMEOUT', kind: 'duration', default: '25s', help: 'On SIGTERM, how long in-flight responses and downloads may take to finish before the process exits.' },
      { flag: 'health-details-from', key: 'health.details-from', env: 'HEALTH_DETAILS_FROM', kind: 'list', default: '127.0.0.0/8,::1/128', placeholder: 'CIDR,...', help: 'Client addresses (CIDR ranges) that get the full /health report (internal URLs, driver errors) without a token; others get up/down only, unless they send the get or put token. Set it to "" when a reverse proxy on this host forwards public requests.' },
      { flag: 'server-request-idle-timeout', key: 'server.request-idle-timeout', env: 'SERVER_REQUEST_IDLE_TIMEOUT', kind: 'duration', default: '60s', help: 'How long a client may stay silent: an upload body that sends nothing for this long is refused (408), a connection that neither sends headers nor reads its response for this long is closed. Waiting on ncps itself (a queued or slow upstream download) never counts.' },
    ],
  },
  {
    title: 'Cache',
    options: [
      { flag: 'cache-hostname', key: 'cache.hostname', env: 'CACHE_HOSTNAME', kind: 'string', defaultText: "the machine's hostname", help: 'Name of this cache; also the name of a generated signing key (<hostname>-1).' },
      { flag: 'cache-data-dir', key: 'cache.data-dir', env: 'CACHE_DATA_DIR', kind: 'string', default: './var/ncps', placeholder: 'DIR', help: 'Where the embedded defaults keep their data: the SQLite database and local storage when neither is configured.' },
      { flag: 'cache-temp-path', key: 'cache.temp-path', env: 'CACHE_TEMP_PATH', kind: 'string', placeholder: 'DIR', defaultText: 'the OS temporary directory', help: 'Directory for downloads in progress before they are verified and stored.' },
      { flag: 'cache-secret-key-path', key: 'cache.secret-key-path', env: 'CACHE_SECRET_KEY_PATH', kind: 'string', placeholder: 'PATH', defaultText: 'generated once and kept in the database', help: 'Nix secret key file (name:base64) used to sign narinfos.' },
      { flag: 'cache-sign-narinfo', key: 'cache.sign-narinfo', env: 'CACHE_SIGN_NARINFO', kind: 'boolean', default: 'true', help: 'Sign served narinfos with this cache\'s key.' },
      { flag: 'cache-priority', key: 'cache.priority', env: 'CACHE_PRIORITY', kind: 'integer', default: '10', placeholder: 'N', help: 'Priority advertised in /nix-cache-info (lower is preferred by Nix; cache.nixos.org advertises 40). 0 or more.' },
      { flag: 'cache-allow-put-verb', key: 'cache.allow-put-verb', env: 'CACHE_ALLOW_PUT_VERB', kind: 'boolean', default: 'false', help: 'Accept uploads (PUT of narinfos and NARs, e.g. nix copy --to).' },
      { flag: 'cache-allow-delete-verb', key: 'cache.allow-delete-verb', env: 'CACHE_ALLOW_DELETE_VERB', kind: 'boolean', default: 'false', help: 'Accept DELETE of narinfos and NARs.' },
      { flag: 'cache-get-token', key: 'cache.get-token', env: 'CACHE_GET_TOKEN', kind: 'string', secret: true, placeholder: 'TOKEN', help: 'When set, GET and HEAD require "Authorization: Bearer <token>".' },
      { flag: 'cache-put-token', key: 'cache.put-token', env: 'CACHE_PUT_TOKEN', kind: 'string', secret: true, placeholder: 'TOKEN', help: 'Token that PUT and DELETE require ("Authorization: Bearer <token>", or Basic with the token as password, as Nix sends from a netrc); it also grants reads. Defaults to --cache-get-token; with neither, writes (when enabled) are open to anyone.' },
      { flag: 'cache-require-trusted-signature', key: 'cache.require-trusted-signature', env: 'CACHE_REQUIRE_TRUSTED_SIGNATURE', kind: 'boolean', default: 'false', help: 'Refuse (403) an uploaded narinfo unless it carries a valid signature from a --cache-upload-trusted-key. Without it, an upload authenticated by the put token is trusted and signed by this cache.' },
      { flag: 'cache-upload-trusted-key', key: 'cache.upload-trusted-keys', env: 'CACHE_UPLOAD_TRUSTED_KEYS', kind: 'list', repeatable: true, placeholder: 'KEY', help: 'Public key name:base64 (repeatable) whose signature makes an upload acceptable under --cache-require-trusted-signature.' },
      { flag: 'cache-max-size', key: 'cache.max-size', env: 'CACHE_MAX_SIZE', kind: 'size', placeholder: 'SIZE', help: 'Size limit of the stored NARs (e.g. 100G); the LRU evicts down to it.' },
      { flag: 'cache-max-nar-size', key: 'cache.max-nar-size', env: 'CACHE_MAX_NAR_SIZE', kind: 'size', default: '16G', placeholder: 'SIZE', help: 'Largest NAR file accepted: an upload, or an upstream download whose size the narinfo does not state, is cut off past it.' },
      { flag: 'cache-lru-schedule', key: 'cache.lru.schedule', env: 'CACHE_LRU_SCHEDULE', kind: 'string', placeholder: 'CRON', help: 'Cron schedule of LRU eviction (e.g. "0 2 * * *"); requires --cache-max-size.' },
      { flag: 'cache-lru-schedule-timezone', key: 'cache.lru.timezone', env: 'CACHE_LRU_SCHEDULE_TZ', kind: 'string', default: 'Local', placeholder: 'TZ', help: 'Time zone of the LRU schedule (IANA name, or Local).' },
      { flag: 'cache-negative-ttl', key: 'cache.negative-ttl', env: 'CACHE_NEGATIVE_TTL', kind: 'duration', default: '1m', help: 'How long a narinfo that every upstream answered "not found" for is answered 404 without asking them again (kept in the database, so every instance of a cluster benefits); concurrent requests for the same narinfo share one upstream lookup. Upstream errors, timeouts and 429s are never remembered; an upload clears the entry. 0 disables it.' },
    ],
  },
  {
    title: 'Storage (exactly one backend; local under the data directory when none is given)',
    options: [
      { flag: 'cache-storage-local', key: 'cache.storage.local', env: 'CACHE_STORAGE_LOCAL', kind: 'string', placeholder: 'DIR', help: 'Store NARs and other files in this directory.' },
      { flag: 'cache-storage-s3-bucket', key: 'cache.storage.s3.bucket', env: 'CACHE_STORAGE_S3_BUCKET', kind: 'string', help: 'S3 bucket.' },
      { flag: 'cache-storage-s3-endpoint', key: 'cache.storage.s3.endpoint', env: 'CACHE_STORAGE_S3_ENDPOINT', kind: 'string', placeholder: 'URL', help: 'S3 endpoint for S3-compatible stores (MinIO, Ceph, ...).' },
      { flag: 'cache-storage-s3-region', key: 'cache.storage.s3.region', env: 'CACHE_STORAGE_S3_REGION', kind: 'string', help: 'S3 region.' },
      { flag: 'cache-storage-s3-access-key-id', key: 'cache.storage.s3.access-key-id', env: 'CACHE_STORAGE_S3_ACCESS_KEY_ID', kind: 'string', secret: true, help: 'S3 access key id; the AWS SDK credential chain is used when absent.' },
      { flag: 'cache-storage-s3-secret-access-key', key: 'cache.storage.s3.secret-access-key', env: 'CACHE_STORAGE_S3_SECRET_ACCESS_KEY', kind: 'string', secret: true, help: 'S3 secret access key.' },
      { flag: 'cache-storage-s3-force-path-style', key: 'cache.storage.s3.force-path-style', env: 'CACHE_STORAGE_S3_FORCE_PATH_STYLE', kind: 'boolean', default: 'false', help: 'Address the bucket as a path (needed by most S3-compatible stores).' },
    ],
  },
  {
    title: 'Database',
    options: [
      { flag: 'cache-database-url', key: 'cache.database-url', env: 'CACHE_DATABASE_URL', kind: 'string', secret: true, placeholder: 'URL', defaultText: 'sqlite:<data-dir>/db/ncps.sqlite', help: 'sqlite:PATH, postgresql://user:pass@host:5432/db?sslmode=..., or mysql://user:pass@host:3306/db.' },
      { flag: 'cache-database-pool-max-open-conns', key: 'cache.database.pool.max-open-conns', env: 'CACHE_DATABASE_POOL_MAX_OPEN_CONNS', kind: 'integer', default: '25', help: 'Most connections open to PostgreSQL/MySQL (SQLite uses one).' },
      { flag: 'cache-database-pool-max-idle-conns', key: 'cache.database.pool.max-idle-conns', env: 'CACHE_DATABASE_POOL_MAX_IDLE_CONNS', kind: 'integer', default: '5', help: 'Idle connections kept open.' },
    ],
  },
  {
    title: 'Upstream caches',
    options: [
      { flag: 'cache-upstream-url', key: 'cache.upstream.urls', env: 'CACHE_UPSTREAM_URLS', kind: 'list', repeatable: true, placeholder: 'URL', default: 'https://cache.nixos.org', help: 'Upstream binary cache (repeatable); append ?priority=N to override its nix-cache-info priority, ?max-connections=N (default 64) to cap the connections open to it at once (per pool: narinfo lookups and NAR downloads each have theirs).' },
      { flag: 'cache-upstream-public-key', key: 'cache.upstream.public-keys', env: 'CACHE_UPSTREAM_PUBLIC_KEYS', kind: 'list', repeatable: true, placeholder: 'KEY', default: 'cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=', help: 'Trusted upstream key name:base64 (repeatable). A key named after an upstream host applies to it; a key matching no host applies to all.' },
      { flag: 'cache-upstream-allow-unsigned', key: 'cache.upstream.allow-unsigned', env: 'CACHE_UPSTREAM_ALLOW_UNSIGNED', kind: 'list', repeatable: true, placeholder: 'URL', help: 'Upstream (as given in --cache-upstream-url) accepted without a public key (repeatable): its narinfos are not verified and are served with its own signatures only, never ours. An upstream with no key is refused otherwise.' },
      { flag: 'cache-upstream-allowed-origin', key: 'cache.upstream.allowed-origins', env: 'CACHE_UPSTREAM_ALLOWED_ORIGINS', kind: 'list', repeatable: true, placeholder: 'ORIGIN', help: 'Origin (scheme://host[:port]) besides the upstreams themselves that absolute NAR URLs and redirects may lead to (repeatable), e.g. a CDN. No credentials are sent to it.' },
      { flag: 'cache-upstream-dialer-timeout', key: 'cache.upstream.dialer-timeout', env: 'CACHE_UPSTREAM_DIALER_TIMEOUT', kind: 'duration', default: '3s', help: 'Timeout to connect to an upstream.' },
      { flag: 'cache-upstream-response-header-timeout', key: 'cache.upstream.response-header-timeout', env: 'CACHE_UPSTREAM_RESPONSE_HEADER_TIMEOUT', kind: 'duration', default: '3s', help: 'Timeout for an upstream to answer with headers.' },
      { flag: 'cache-upstream-max-concurrent-downloads', key: 'cache.upstream.max-concurrent-downloads', env: 'CACHE_UPSTREAM_MAX_CONCURRENT_DOWNLOADS', kind: 'integer', default: '32', help: 'Most NAR downloads from upstreams at once. Client requests beyond it wait for a slot; background prefetches (started by narinfo misses) wait behind them, use at most half of the slots and are dropped first.' },
      { flag: 'cache-upstream-http-proxy', key: 'cache.upstream.http-proxy', env: 'HTTP_PROXY', alsoEnv: ['http_proxy'], kind: 'string', secret: true, placeholder: 'URL', help: 'Forward proxy (http://[user:pass@]host[:port]) for requests to http:// upstreams, sent in absolute form (through a CONNECT tunnel when the request carries the upstream\'s credentials). Its own credentials go to it only, as Proxy-Authorization.' },
      { flag: 'cache-upstream-https-proxy', key: 'cache.upstream.https-proxy', env: 'HTTPS_PROXY', alsoEnv: ['https_proxy'], kind: 'string', secret: true, placeholder: 'URL', help: 'Forward proxy (http://[user:pass@]host[:port]) for requests to https:// upstreams: a CONNECT tunnel, inside which TLS runs end to end with the upstream (its certificate checked against its host name).' },
      { flag: 'cache-upstream-no-proxy', key: 'cache.upstream.no-proxy', env: 'NO_PROXY', alsoEnv: ['no_proxy'], kind: 'list', placeholder: 'HOST,...', help: 'Hosts reached without the proxy, as curl reads NO_PROXY: * for all; a name matches itself and its subdomains (a leading dot or *. changes nothing); an IP address, or a CIDR range; :port limits an entry to that port ([::1]:8080 for IPv6).' },
      { flag: 'cache-upstream-ca-file', key: 'cache.upstream.ca-file', env: 'CACHE_UPSTREAM_CA_FILE', kind: 'string', placeholder: 'PATH', help: 'PEM file of CA certificates trusted for https upstreams (and allowed origins), in addition to the bundled public CAs: e.g. a corporate CA that re-signs traffic, or a private cache\'s CA.' },
      { flag: 'netrc-file', key: 'cache.netrc-file', env: 'NETRC_FILE', kind: 'string', placeholder: 'PATH', default: '~/.netrc', help: 'netrc file giving Basic credentials per upstream host.' },
    ],
  },
  {
    title: 'Locks',
    options: [
      { flag: 'cache-lock-backend', key: 'cache.lock.backend', env: 'CACHE_LOCK_BACKEND', kind: 'string', default: 'local', choices: ['local', 'redis', 'postgres'], help: 'local (one instance), redis (a Redis server or Redis Cluster) or postgres (advisory locks on the PostgreSQL database).' },
      { flag: 'cache-lock-allow-degraded-mode', key: 'cache.lock.allow-degraded-mode', env: 'CACHE_LOCK_ALLOW_DEGRADED_MODE', kind: 'boolean', default: 'false', help: 'Fall back to local locks while the distributed backend is unreachable (breaks HA guarantees).' },
      { flag: 'cache-lock-download-ttl', key: 'cache.lock.download-lock-ttl', env: 'CACHE_LOCK_DOWNLOAD_TTL', kind: 'duration', default: '5m', help: 'TTL of download locks: how long a request waits for another download of the same path. Held locks are renewed while the download runs; a crashed holder\'s Redis lock expires within min(TTL, 15s).' },
      { flag: 'cache-lock-lru-ttl', key: 'cache.lock.lru-lock-ttl', env: 'CACHE_LOCK_LRU_TTL', kind: 'duration', default: '30m', help: 'TTL of the LRU lock. Held while eviction runs (renewed); a crashed holder\'s Redis lock expires within min(TTL, 15s).' },
      { flag: 'cache-lock-retry-max-attempts', key: 'cache.lock.retry.max-attempts', env: 'CACHE_LOCK_RETRY_MAX_ATTEMPTS', kind: 'integer', default: '3', help: 'Polling attempts when a backend gives no release notification.' },
      { flag: 'cache-lock-retry-initial-delay', key: 'cache.lock.retry.initial-delay', env: 'CACHE_LOCK_RETRY_INITIAL_DELAY', kind: 'duration', default: '100ms', help: 'First backoff delay; delay = min(initial * 2^attempt, max).' },
      { flag: 'cache-lock-retry-max-delay', key: 'cache.lock.retry.max-delay', env: 'CACHE_LOCK_RETRY_MAX_DELAY', kind: 'duration', default: '2s', help: 'Backoff cap.' },
      { flag: 'cache-lock-retry-jitter', key: 'cache.lock.retry.jitter', env: 'CACHE_LOCK_RETRY_JITTER', kind: 'boolean', default: 'true', help: 'Add random(0, delay) to each backoff delay.' },
      { flag: 'cache-lock-redis-key-prefix', key: 'cache.lock.redis.key-prefix', env: 'CACHE_LOCK_REDIS_KEY_PREFIX', kind: 'string', default: 'ncps:lock:', help: 'Prefix of every lock key.' },
      { flag: 'cache-redis-addrs', key: 'cache.redis.addrs', env: 'CACHE_REDIS_ADDRS', kind: 'list', placeholder: 'HOST:PORT,...', help: 'Redis addresses. Several = the seed nodes of one Redis Cluster (a single address that is a cluster node is detected too); with --cache-redis-redlock-quorum, independent servers voting. Set with backend local, switches to redis (with a warning).' },
      { flag: 'cache-redis-redlock-quorum', key: 'cache.redis.redlock-quorum', env: 'CACHE_REDIS_REDLOCK_QUORUM', kind: 'boolean', default: 'false', help: 'Treat the --cache-redis-addrs as independent (non-cluster) servers and take each lock on a majority of them (Redlock quorum).' },
      { flag: 'cache-redis-username', key: 'cache.redis.username', env: 'CACHE_REDIS_USERNAME', kind: 'string', help: 'Redis ACL user.' },
      { flag: 'cache-redis-password', key: 'cache.redis.password', env: 'CACHE_REDIS_PASSWORD', kind: 'string', secret: true, help: 'Redis password.' },
      { flag: 'cache-redis-db', key: 'cache.redis.db', env: 'CACHE_REDIS_DB', kind: 'integer', default: '0', help: 'Redis database number.' },
      { flag: 'cache-redis-use-tls', key: 'cache.redis.use-tls', env: 'CACHE_REDIS_USE_TLS', kind: 'boolean', default: 'false', help: 'Connect to Redis over TLS (certificates checked against the system CAs, NODE_EXTRA_CA_CERTS, or --cache-redis-ca-file).' },
      { flag: 'cache-redis-ca-file', key: 'cache.redis.ca-file', env: 'CACHE_REDIS_CA_FILE', kind: 'string', placeholder: 'PATH', help: 'PEM file of the CA(s) that sign the Redis servers\' certificates (private CA), instead of the system CAs. Implies --cache-redis-use-tls.' },
      { flag: 'cache-redis-pool-size', key: 'cache.redis.pool-size', env: 'CACHE_REDIS_POOL_SIZE', kind: 'integer', default: '10', help: 'Accepted for compatibility with the Go ncps; ioredis multiplexes every command over one connection per address (plus one for release notifications).' },
    ],
  },
];

export const OPTIONS: readonly OptionSpec[] = OPTION_GROUPS.flatMap((g) => g.options);
