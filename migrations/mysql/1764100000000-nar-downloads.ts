import { MigrationInterface, QueryRunner } from 'typeorm';

/** Downloads in progress, so another instance can stream them from their owner (see docs/ha.md). */
export class NarDownloads1764100000000 implements MigrationInterface {
  name = 'NarDownloads1764100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE nar_downloads (
      \`key\` VARCHAR(255) NOT NULL PRIMARY KEY,
      owner_url VARCHAR(255) NOT NULL,
      started_at BIGINT NOT NULL,
      expires_at BIGINT NOT NULL
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE nar_downloads`);
  }
}
