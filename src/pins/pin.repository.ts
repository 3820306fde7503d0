import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { NarInfoEntity, PinEntity, SqlRunner } from 'src/database';

/** A pin as listed: whether its narinfo is stored right now comes with it. */
export interface PinRow {
  hash: string;
  createdAt: number;
  expiresAt: number | null;
  /** Whether a narinfo with this hash is stored (a pin may wait for its path to arrive). */
  stored: boolean;
}

/** I/O of the pins table; the same on SQLite, PostgreSQL and MySQL. */
@Injectable()
export class PinRepository {
  private readonly sql: SqlRunner;
  private readonly pins: string;
  private readonly narinfos: string;

  constructor(@Inject(DataSource) source: DataSource | EntityManager) {
    this.sql = new SqlRunner(source);
    this.pins = source.getRepository(PinEntity).metadata.tableName;
    this.narinfos = source.getRepository(NarInfoEntity).metadata.tableName;
  }

  /** Pins `hash`, or renews its pin: creation time and expiry are replaced (a TTL starts again). */
  async pin(hash: string, createdAt: number, expiresAt: number | null): Promise<void> {
    const q = (c: string) => this.sql.quote(c);
    const columns = `${q('hash')}, ${q('created_at')}, ${q('expires_at')}`;
    const onConflict =
      this.sql.dialect === 'mysql'
        ? `ON DUPLICATE KEY UPDATE ${q('created_at')} = VALUES(${q('created_at')}), ${q('expires_at')} = VALUES(${q('expires_at')})`
        : `ON CONFLICT (${q('hash')}) DO UPDATE SET ${q('created_at')} = excluded.${q('created_at')}, ${q('expires_at')} = excluded.${q('expires_at')}`;
    const statement = `INSERT INTO ${q(this.pins)} (${columns}) VALUES (${this.sql.params(3)}) ${onConflict}`;
    await this.sql.write(() => this.sql.query(statement, [hash, createdAt, expiresAt]));
  }

  /** Removes the pin of `hash`; says whether there was one. */
  async unpin(hash: string): Promise<boolean> {
    const q = (c: string) => this.sql.quote(c);
    const { affected } = await this.sql.write(() =>
      this.sql.query(`DELETE FROM ${q(this.pins)} WHERE ${q('hash')} = ${this.sql.params(1)}`, [hash]),
    );
    return affected > 0;
  }

  /** Every pin, expired ones included, in hash order. */
  async list(): Promise<PinRow[]> {
    const q = (c: string) => this.sql.quote(c);
    const { rows } = await this.sql.query<{
      hash: string;
      created_at: string | number;
      expires_at: string | number | null;
      stored: string | number;
    }>(
      `SELECT p.${q('hash')}, p.${q('created_at')}, p.${q('expires_at')}, ` +
        `CASE WHEN EXISTS (SELECT 1 FROM ${q(this.narinfos)} n WHERE n.${q('hash')} = p.${q('hash')}) THEN 1 ELSE 0 END AS ${q('stored')} ` +
        `FROM ${q(this.pins)} p ORDER BY p.${q('hash')}`,
    );
    return rows.map((r) => ({
      hash: r.hash,
      createdAt: Number(r.created_at),
      expiresAt: r.expires_at === null ? null : Number(r.expires_at),
      stored: Number(r.stored) === 1,
    }));
  }

  /** Hashes of the pins still in force at `now` (no expiry, or expiring later). */
  async findActiveHashes(now: number): Promise<string[]> {
    const q = (c: string) => this.sql.quote(c);
    const { rows } = await this.sql.query<{ hash: string }>(
      `SELECT ${q('hash')} FROM ${q(this.pins)} WHERE ${q('expires_at')} IS NULL OR ${q('expires_at')} > ${this.sql.params(1)} ORDER BY ${q('hash')}`,
      [now],
    );
    return rows.map((r) => r.hash);
  }

  /** Deletes the pins expired at `now`; returns how many. */
  async deleteExpired(now: number): Promise<number> {
    const q = (c: string) => this.sql.quote(c);
    const { affected } = await this.sql.write(() =>
      this.sql.query(`DELETE FROM ${q(this.pins)} WHERE ${q('expires_at')} <= ${this.sql.params(1)}`, [now]),
    );
    return affected;
  }
}
