import { Module } from '@nestjs/common';
import { DatabaseModule } from 'src/database';
import { SigningModule } from 'src/signing';
import { StorageModule } from 'src/storage';
import { LockingModule } from 'src/locking';
import { UpstreamModule } from 'src/upstream';
import { ClusterModule } from 'src/cluster';
import { Clock, SystemClock } from 'src/common/clock';
import { AccessTracker } from './access-tracker';
import { CacheMetrics } from './cache.metrics';
import { CacheLimitMetrics } from './limit.metrics';
import { StoredDataMetrics } from './stored.metrics';
import { DownloadMetrics } from './download/download.metrics';
import { DownloadRegistry } from './download/download-registry';
import { TempFiles } from './download/temp-files';
import { Hashing, NodeHashing } from './download/hashing';
import { NarDownloader } from './download/nar-downloader.service';
import { DownloadSlots } from './download/download-slots';
import { TempSweeper } from './download/temp-sweeper';
import { NarInfoFetcher } from './narinfo-fetcher.service';
import { NegativeNarInfos } from './negative-narinfos';
import { PeerController } from './peer.controller';
import { PeerStreamService } from './download/peer-stream.service';
import { UndiciPeerHttpClient, PeerHttpClient } from './download/peer-http.client';
import { CacheController } from './cache.controller';
import { NarInfoService } from './narinfo.service';
import { HotRoutes } from './hot-routes';
import { NarInfoRoutes } from './narinfo.routes';
import { NarService } from './nar.service';
import { InfoController } from './info.controller';
import { ZstdEncoderPool } from './zstd-encoding';
import { ArtifactController, ArtifactRoutes, ArtifactService } from './artifacts';

@Module({
  imports: [DatabaseModule, StorageModule, SigningModule, LockingModule, UpstreamModule, ClusterModule],
  // InfoController first: its static routes must not be shadowed by the catch-all :name routes.
  controllers: [InfoController, PeerController, CacheController, ArtifactController],
  providers: [
    NarInfoService,
    NarService,
    AccessTracker,
    HotRoutes,
    NarInfoRoutes,
    DownloadRegistry,
    TempFiles,
    { provide: Hashing, useClass: NodeHashing },
    { provide: Clock, useClass: SystemClock },
    NarDownloader,
    NarInfoFetcher,
    NegativeNarInfos,
    PeerStreamService,
    { provide: PeerHttpClient, useClass: UndiciPeerHttpClient },
    DownloadSlots,
    TempSweeper,
    ArtifactService,
    ArtifactRoutes,
    // Its metrics (the global MetricsModule's registry): lookups, downloads, stored data and its limit.
    CacheMetrics,
    DownloadMetrics,
    StoredDataMetrics,
    CacheLimitMetrics,
    // Built by hand: its constructor takes a pool size, not a dependency.
    { provide: ZstdEncoderPool, useFactory: () => new ZstdEncoderPool() },
  ],
  exports: [NarInfoService, NarService, DownloadRegistry, NarInfoFetcher, NarDownloader, DownloadSlots],
})
export class CacheModule {}
