import { Inject, Injectable } from '@nestjs/common';
import { Gauge, Registry } from 'prom-client';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';

/**
 * The configured --cache-max-size, so that a dashboard or an alert can set ncps_stored_bytes against
 * it without a copy of the configuration. Absent when no limit is set.
 */
@Injectable()
export class CacheLimitMetrics {
  constructor(registry: Registry, @Inject(NCPS_CONFIG) config: NcpsConfig) {
    const limit = config.cache.maxSizeBytes;
    if (limit === undefined) return;
    new Gauge({
      name: 'ncps_cache_max_size_bytes',
      help: 'The configured --cache-max-size in bytes (the size the LRU keeps ncps_stored_bytes under)',
      registers: [registry],
    }).set(limit);
  }
}
