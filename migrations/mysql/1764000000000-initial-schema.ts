import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Table options: InnoDB for transactions and row locks; utf8mb4_bin so comparisons are exact and
 * case-sensitive like SQLite's and PostgreSQL's (a nix32 hash or a storage key must not match another
 * spelling of itself).
 */
const TABLE_OPTIONS = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin';

/**
 * The first schema, MySQL/MariaDB flavour of migrations/sqlite (same tables, columns, nullability and
 * indexes; test/integration/database/schema-parity.spec.ts holds them to it). TEXT columns are
 * MEDIUMTEXT because MySQL's TEXT stops at 64 KiB, less than the References of a large closure.
 * `key` and `system` are reserved words in MySQL, hence the backquotes. MySQL commits each DDL
 * statement on its own, so this migration is not atomic there: a failure halfway needs manual cleanup.
 */
export class InitialSchema1764000000000 implements MigrationInterface {
  name = 'InitialSchema1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE narinfos (
      id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
      hash VARCHAR(32) NOT NULL,
      store_path VARCHAR(255) NOT NULL,
      url VARCHAR(255) NOT NULL,
      compression VARCHAR(16) NOT NULL,
      file_hash VARCHAR(128),
      file_size BIGINT,
      nar_hash VARCHAR(128) NOT NULL,
      nar_size BIGINT NOT NULL,
      refs MEDIUMTEXT NOT NULL,
      deriver VARCHAR(255),
      \`system\` VARCHAR(64),
      ca VARCHAR(255),
      sigs MEDIUMTEXT NOT NULL,
      upstream_url VARCHAR(255),
      upstream_nar_url MEDIUMTEXT,
      created_at BIGINT NOT NULL,
      last_accessed_at BIGINT NOT NULL,
      UNIQUE INDEX idx_narinfos_hash (hash),
      INDEX idx_narinfos_url (url),
      INDEX idx_narinfos_last_accessed_at (last_accessed_at)
    ) ${TABLE_OPTIONS}`);
    await q.query(`CREATE TABLE nar_files (
      id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
      \`key\` VARCHAR(255) NOT NULL,
      compression VARCHAR(16) NOT NULL,
      file_size BIGINT NOT NULL,
      file_hash VARCHAR(128),
      created_at BIGINT NOT NULL,
      last_accessed_at BIGINT NOT NULL,
      UNIQUE INDEX idx_nar_files_key (\`key\`),
      INDEX idx_nar_files_last_accessed_at (last_accessed_at)
    ) ${TABLE_OPTIONS}`);
    await q.query(`CREATE TABLE config (
      \`key\` VARCHAR(64) NOT NULL PRIMARY KEY,
      value MEDIUMTEXT NOT NULL
    ) ${TABLE_OPTIONS}`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE config`);
    await q.query(`DROP TABLE nar_files`);
    await q.query(`DROP TABLE narinfos`);
  }
}
