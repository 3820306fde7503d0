import { Inject, Injectable, OnApplicationBootstrap, Optional } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { defaultAdvertiseUrl, ownerRef } from './advertise-url';

/**
 * Who this process is in a cluster: a random id drawn at each start, and the URL at which the other
 * instances reach it — --server-advertise-url, else its own address, known once the server listens
 * (the port may be chosen by the OS). A process that does not serve (a CLI command) has no URL.
 */
@Injectable()
export class InstanceIdentity implements OnApplicationBootstrap {
  readonly id = randomBytes(12).toString('base64url');
  /** Resolves with the advertise URL once the HTTP server listens. */
  readonly listening: Promise<string>;
  private url?: string;
  private markListening!: (url: string) => void;

  constructor(
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {
    this.listening = new Promise((resolve) => (this.markListening = resolve));
  }

  /** Undefined until the server listens, and in processes that do not serve. */
  get advertiseUrl(): string | undefined {
    return this.url;
  }

  /** What this instance writes as the owner of a download announcement (see ownerRef), once it listens. */
  get owner(): string | undefined {
    return this.url === undefined ? undefined : ownerRef(this.url, this.id);
  }

  onApplicationBootstrap(): void {
    const server = this.adapterHost?.httpAdapter?.getHttpServer() as Server | undefined;
    server?.once('listening', () => {
      const { port } = server.address() as AddressInfo;
      this.url = this.config.server.advertiseUrl ?? defaultAdvertiseUrl(this.config.server.host, port, hostname());
      this.markListening(this.url);
    });
  }
}
