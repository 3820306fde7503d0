import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Narinfos that no upstream has, remembered until `expires_at` (epoch ms) so that repeated and
 * concurrent misses, on any instance, cost one upstream round (--cache-negative-ttl). The index lets
 * the sweep of expired rows touch only them.
 */
export class NegativeNarInfos1764400000000 implements MigrationInterface {
  name = 'NegativeNarInfos1764400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE negative_narinfos (
      hash VARCHAR(32) NOT NULL PRIMARY KEY,
      expires_at BIGINT NOT NULL
    )`);
    await q.query(`CREATE INDEX idx_negative_narinfos_expires_at ON negative_narinfos (expires_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE negative_narinfos`);
  }
}
