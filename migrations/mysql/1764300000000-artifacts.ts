import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Files served besides narinfos and NARs: NAR listings (`<hash>.ls`), build logs, realisations,
 * build traces and debuginfo pointers (see src/cache/artifacts). `narinfo_hash` ties a listing to
 * the narinfo the LRU evicts it with; the others are evicted by their own `last_accessed_at`.
 */
export class Artifacts1764300000000 implements MigrationInterface {
  name = 'Artifacts1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE artifacts (
      path VARCHAR(512) NOT NULL PRIMARY KEY,
      kind VARCHAR(16) NOT NULL,
      storage_key VARCHAR(1024) NOT NULL,
      narinfo_hash VARCHAR(32) NULL,
      file_size BIGINT NOT NULL,
      content_encoding VARCHAR(16) NULL,
      created_at BIGINT NOT NULL,
      last_accessed_at BIGINT NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`);
    await q.query(`CREATE INDEX idx_artifacts_narinfo_hash ON artifacts (narinfo_hash)`);
    await q.query(`CREATE INDEX idx_artifacts_last_accessed_at ON artifacts (last_accessed_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE artifacts`);
  }
}
