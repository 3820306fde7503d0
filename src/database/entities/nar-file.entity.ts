import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { bigintNumber } from './column-types';

/** A NAR stored in the storage backend. Several narinfos may point at one NAR file. */
@Entity({ name: 'nar_files' })
export class NarFileEntity {
  /** BIGINT: conflicting inserts and LRU churn use up ids that never come back. */
  @PrimaryColumn({ type: 'bigint', generated: 'increment', transformer: bigintNumber })
  id: number;

  /** Storage key and URL path, e.g. `nar/<hash>.nar.xz`. */
  @Index('idx_nar_files_key', { unique: true })
  @Column({ type: 'varchar', length: 255 })
  key: string;

  @Column({ type: 'varchar', length: 16 })
  compression: string;

  @Column({ name: 'file_size', type: 'bigint', transformer: bigintNumber })
  fileSize: number;

  @Column({ name: 'file_hash', type: 'varchar', length: 128, nullable: true })
  fileHash: string | null;

  @Column({ name: 'created_at', type: 'bigint', transformer: bigintNumber })
  createdAt: number;

  @Index('idx_nar_files_last_accessed_at')
  @Column({ name: 'last_accessed_at', type: 'bigint', transformer: bigintNumber })
  lastAccessedAt: number;
}
