import { Injectable } from '@nestjs/common';
import { Gauge, Registry } from 'prom-client';
import { DownloadRegistry } from './download-registry';

/** NAR downloads running in this instance, read from the DownloadRegistry on scrape. */
@Injectable()
export class DownloadMetrics {
  constructor(registry: Registry, downloads: DownloadRegistry) {
    new Gauge({
      name: 'ncps_nar_downloads_in_flight',
      help: 'NAR downloads from upstream running in this instance',
      registers: [registry],
      collect() {
        this.set(downloads.size());
      },
    });
  }
}
