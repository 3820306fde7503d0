import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { bigintNumber } from './column-types';

/**
 * A narinfo as we serve it (URL in our scheme, unsigned by us: our signature is added when served,
 * so a key rotation needs no rewrite). References and upstream signatures are stored as text lists:
 * they are always read and written whole with their narinfo.
 */
@Entity({ name: 'narinfos' })
export class NarInfoEntity {
  /** BIGINT: conflicting inserts and LRU churn use up ids that never come back. */
  @PrimaryColumn({ type: 'bigint', generated: 'increment', transformer: bigintNumber })
  id: number;

  /** The 32-character nix32 hash part of the store path. */
  @Index('idx_narinfos_hash', { unique: true })
  @Column({ type: 'varchar', length: 32 })
  hash: string;

  @Column({ name: 'store_path', type: 'varchar', length: 255 })
  storePath: string;

  /** Our URL for the NAR (= its storage key), e.g. `nar/<hash>.nar.zst`. */
  @Index('idx_narinfos_url')
  @Column({ type: 'varchar', length: 255 })
  url: string;

  @Column({ type: 'varchar', length: 16 })
  compression: string;

  @Column({ name: 'file_hash', type: 'varchar', length: 128, nullable: true })
  fileHash: string | null;

  @Column({ name: 'file_size', type: 'bigint', nullable: true, transformer: bigintNumber })
  fileSize: number | null;

  @Column({ name: 'nar_hash', type: 'varchar', length: 128 })
  narHash: string;

  @Column({ name: 'nar_size', type: 'bigint', transformer: bigintNumber })
  narSize: number;

  /** Space-separated store path base names, as in the narinfo's References line. */
  @Column({ type: 'text' })
  refs: string;

  @Column({ type: 'varchar', length: 255, nullable: true })
  deriver: string | null;

  @Column({ type: 'varchar', length: 64, nullable: true })
  system: string | null;

  @Column({ type: 'varchar', length: 255, nullable: true })
  ca: string | null;

  /** Signatures other than ours (from the upstream or the uploader), newline-separated. */
  @Column({ type: 'text' })
  sigs: string;

  /** Where the NAR came from: the upstream base URL and its original, opaque NAR URL (with query). */
  @Column({ name: 'upstream_url', type: 'varchar', length: 255, nullable: true })
  upstreamUrl: string | null;

  @Column({ name: 'upstream_nar_url', type: 'text', nullable: true })
  upstreamNarUrl: string | null;

  /**
   * False for a narinfo taken from an upstream allowed unsigned (no key to check it against): it is
   * served as that upstream sent it and never signed by us, whatever the configuration says later.
   */
  @Column({ type: 'boolean', default: true })
  verified: boolean;

  @Column({ name: 'created_at', type: 'bigint', transformer: bigintNumber })
  createdAt: number;

  @Index('idx_narinfos_last_accessed_at')
  @Column({ name: 'last_accessed_at', type: 'bigint', transformer: bigintNumber })
  lastAccessedAt: number;
}
