import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintNumber } from './column-types';

/** A NAR download in progress on one instance; others stream it from `ownerUrl` instead of waiting. */
@Entity({ name: 'nar_downloads' })
export class NarDownloadEntity {
  @PrimaryColumn({ type: 'varchar', length: 255 })
  key: string;

  @Column({ name: 'owner_url', type: 'varchar', length: 255 })
  ownerUrl: string;

  @Column({ name: 'started_at', type: 'bigint', transformer: bigintNumber })
  startedAt: number;

  /** Refreshed while the download runs; a crashed owner's row stops counting after this time. */
  @Column({ name: 'expires_at', type: 'bigint', transformer: bigintNumber })
  expiresAt: number;
}
