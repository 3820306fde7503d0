import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintNumber } from './column-types';

/** A pinned store path: the LRU keeps its narinfo and whole closure (see src/pins). */
@Entity({ name: 'pins' })
export class PinEntity {
  /** The 32-character nix32 hash part of the store path (its narinfo need not be stored yet). */
  @PrimaryColumn({ type: 'varchar', length: 32 })
  hash: string;

  @Column({ name: 'created_at', type: 'bigint', transformer: bigintNumber })
  createdAt: number;

  /** Epoch ms after which the pin no longer protects anything; null: no TTL. */
  @Column({ name: 'expires_at', type: 'bigint', nullable: true, transformer: bigintNumber })
  expiresAt: number | null;
}
