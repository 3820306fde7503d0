import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { bigintNumber } from './column-types';

/**
 * A stored file other than a narinfo or a NAR: a NAR listing (`<hash>.ls`), a build log, a
 * realisation, a build trace entry or a debuginfo pointer (see src/cache/artifacts). Stored as it
 * was fetched or uploaded, with its Content-Encoding, and never signed by us.
 */
@Entity({ name: 'artifacts' })
export class ArtifactEntity {
  /** The request path without the leading slash, e.g. `log/<drv>` or `<hash>.ls`. */
  @PrimaryColumn({ type: 'varchar', length: 512 })
  path: string;

  /** listing, log, realisation, build-trace or debuginfo. */
  @Column({ type: 'varchar', length: 16 })
  kind: string;

  @Column({ name: 'storage_key', type: 'varchar', length: 1024 })
  storageKey: string;

  /** The narinfo a `.ls` belongs to: the LRU evicts it with that narinfo. Null for the others. */
  @Index('idx_artifacts_narinfo_hash')
  @Column({ name: 'narinfo_hash', type: 'varchar', length: 32, nullable: true })
  narInfoHash: string | null;

  /** Bytes in storage (encoded, when there is a Content-Encoding). */
  @Column({ name: 'file_size', type: 'bigint', transformer: bigintNumber })
  fileSize: number;

  /** The Content-Encoding the bytes are stored (and served) in; null: none. */
  @Column({ name: 'content_encoding', type: 'varchar', length: 16, nullable: true })
  contentEncoding: string | null;

  @Column({ name: 'created_at', type: 'bigint', transformer: bigintNumber })
  createdAt: number;

  @Index('idx_artifacts_last_accessed_at')
  @Column({ name: 'last_accessed_at', type: 'bigint', transformer: bigintNumber })
  lastAccessedAt: number;
}
