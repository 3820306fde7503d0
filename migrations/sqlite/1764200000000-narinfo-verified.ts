import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Whether a narinfo's signatures were verified (an upstream key, or a trusted upload) and so may be
 * signed by us. Remembered per row, so that a later configuration cannot make us sign what was never
 * checked. Rows stored before are marked verified: they were served signed until now, and how they
 * were checked was not recorded.
 */
export class NarInfoVerified1764200000000 implements MigrationInterface {
  name = 'NarInfoVerified1764200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE narinfos ADD COLUMN verified BOOLEAN NOT NULL DEFAULT 1`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE narinfos DROP COLUMN verified`);
  }
}
