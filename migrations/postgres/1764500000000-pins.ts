import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Pinned store paths: the LRU never evicts a pinned narinfo nor anything in its closure. A pin
 * names a store path hash whether or not its narinfo is stored yet; `expires_at` (epoch ms) is
 * null for a pin without a TTL.
 */
export class Pins1764500000000 implements MigrationInterface {
  name = 'Pins1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE pins (
      hash VARCHAR(32) NOT NULL PRIMARY KEY,
      created_at BIGINT NOT NULL,
      expires_at BIGINT NULL
    )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE pins`);
  }
}
