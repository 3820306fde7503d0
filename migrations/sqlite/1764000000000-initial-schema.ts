import { MigrationInterface, QueryRunner } from 'typeorm';

/** The first schema: narinfos, the NAR files they point at, and shared config (see src/database/entities). */
export class InitialSchema1764000000000 implements MigrationInterface {
  name = 'InitialSchema1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE narinfos (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      hash VARCHAR(32) NOT NULL,
      store_path VARCHAR(255) NOT NULL,
      url VARCHAR(255) NOT NULL,
      compression VARCHAR(16) NOT NULL,
      file_hash VARCHAR(128),
      file_size BIGINT,
      nar_hash VARCHAR(128) NOT NULL,
      nar_size BIGINT NOT NULL,
      refs TEXT NOT NULL,
      deriver VARCHAR(255),
      system VARCHAR(64),
      ca VARCHAR(255),
      sigs TEXT NOT NULL,
      upstream_url VARCHAR(255),
      upstream_nar_url TEXT,
      created_at BIGINT NOT NULL,
      last_accessed_at BIGINT NOT NULL
    )`);
    await q.query(`CREATE UNIQUE INDEX idx_narinfos_hash ON narinfos (hash)`);
    await q.query(`CREATE INDEX idx_narinfos_url ON narinfos (url)`);
    await q.query(`CREATE INDEX idx_narinfos_last_accessed_at ON narinfos (last_accessed_at)`);
    await q.query(`CREATE TABLE nar_files (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      key VARCHAR(255) NOT NULL,
      compression VARCHAR(16) NOT NULL,
      file_size BIGINT NOT NULL,
      file_hash VARCHAR(128),
      created_at BIGINT NOT NULL,
      last_accessed_at BIGINT NOT NULL
    )`);
    await q.query(`CREATE UNIQUE INDEX idx_nar_files_key ON nar_files (key)`);
    await q.query(`CREATE INDEX idx_nar_files_last_accessed_at ON nar_files (last_accessed_at)`);
    await q.query(`CREATE TABLE config (key VARCHAR(64) PRIMARY KEY NOT NULL, value TEXT NOT NULL)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE config`);
    await q.query(`DROP TABLE nar_files`);
    await q.query(`DROP TABLE narinfos`);
  }
}
