import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { bigintNumber } from './column-types';

/** A narinfo every upstream answered "not found" for: not asked again before `expiresAt`. */
@Entity({ name: 'negative_narinfos' })
export class NegativeNarInfoEntity {
  /** The 32-character nix32 hash part of the store path. */
  @PrimaryColumn({ type: 'varchar', length: 32 })
  hash: string;

  /** Epoch ms; a row at or past it means nothing and is swept (see NegativeNarInfoRepository). */
  @Index('idx_negative_narinfos_expires_at')
  @Column({ name: 'expires_at', type: 'bigint', transformer: bigintNumber })
  expiresAt: number;
}
