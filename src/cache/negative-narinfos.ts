import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { Clock } from 'src/common/clock';
import { NegativeNarInfoRepository } from 'src/database';

/**
 * Hashes whose expiry this instance keeps in memory (some 100 bytes each): a burst of misses for one
 * closure stays well within it, and a hash that falls out is only read from the database again.
 */
const REMEMBERED_HERE = 10_000;

/** Least time between two sweeps of expired rows by one instance: one cheap indexed DELETE a minute at most. */
const SWEEP_INTERVAL_MS = 60_000;

/**
 * What is remembered of a hash: an unexpired miss (`remembered`), a row whose time is up but that
 * nobody deleted yet (`expired`: a positive answer deletes it), or nothing.
 */
export type NegativeState = 'remembered' | 'expired' | 'none';

/**
 * Narinfos every upstream answered "not found" for (--cache-negative-ttl), so that repeated misses
 * cost no upstream request until the TTL is up. Kept in the database, which all instances of a
 * cluster share, with a bounded in-memory front so that repeated misses on one instance cost no
 * query either. Only a certain "not found" is remembered (see NarInfoLookup); an upload forgets it.
 *
 * The front may outlive a deletion made by another instance (an upload there) by up to the TTL, which
 * is harmless: every caller looks for the stored narinfo before asking here, and an upload stores one.
 * Expired rows are deleted by a sweep that a new miss starts at most once a minute per instance.
 */
@Injectable()
export class NegativeNarInfos implements OnModuleDestroy {
  private readonly logger = new Logger(NegativeNarInfos.name);
  private readonly ttlMs: number;
  /** hash → expiry (epoch ms), oldest first: every entry lives the same TTL, so this is expiry order. */
  private readonly here = new Map<string, number>();
  private nextSweepAt = 0;
  private sweeping?: Promise<void>;

  constructor(
    @Inject(NCPS_CONFIG) config: NcpsConfig,
    private readonly rows: NegativeNarInfoRepository,
    private readonly clock: Clock,
  ) {
    this.ttlMs = config.cache.negativeTtlMs;
  }

  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  /** Whether this instance remembers a miss of `hash` that has not expired; costs no I/O. */
  knownHere(hash: string): boolean {
    const expiresAt = this.here.get(hash);
    if (expiresAt === undefined) return false;
    if (expiresAt > this.clock.now()) return true;
    this.here.delete(hash);
    return false;
  }

  /** What is remembered of `hash` here or by any instance (a query unless known here). */
  async check(hash: string): Promise<NegativeState> {
    if (!this.enabled) return 'none';
    if (this.knownHere(hash)) return 'remembered';
    const expiresAt = await this.rows.expiryOf(hash);
    if (expiresAt === null) return 'none';
    if (expiresAt <= this.clock.now()) return 'expired';
    this.keepHere(hash, expiresAt);
    return 'remembered';
  }

  /**
   * Remembers that no upstream has `hash`, for the TTL. Known here at once (before the write ends);
   * a failed write is logged, not thrown: the miss itself was answered correctly.
   */
  async remember(hash: string): Promise<void> {
    if (!this.enabled) return;
    const now = this.clock.now();
    this.keepHere(hash, now + this.ttlMs);
    try {
      await this.rows.remember(hash, now + this.ttlMs);
    } catch (e) {
      this.logger.warn({ hash, err: (e as Error).message }, 'narinfo miss not remembered in the database');
    }
    if (now >= this.nextSweepAt) {
      this.nextSweepAt = now + SWEEP_INTERVAL_MS;
      this.sweeping ??= this.sweep(now).finally(() => (this.sweeping = undefined));
    }
  }

  /** Forgets the miss of `hash` (an upload or a positive answer): here and in the database. */
  async forget(hash: string): Promise<void> {
    if (!this.enabled) return;
    this.here.delete(hash);
    await this.rows.forget(hash);
  }

  async onModuleDestroy(): Promise<void> {
    await this.sweeping;
  }

  private keepHere(hash: string, expiresAt: number): void {
    this.here.delete(hash);
    this.here.set(hash, expiresAt);
    if (this.here.size > REMEMBERED_HERE) this.here.delete(this.here.keys().next().value as string);
  }

  private async sweep(now: number): Promise<void> {
    try {
      const deleted = await this.rows.sweepExpired(now);
      if (deleted > 0) this.logger.debug({ deleted }, 'expired narinfo misses deleted');
    } catch (e) {
      this.logger.warn({ err: (e as Error).message }, 'sweep of expired narinfo misses failed');
    }
  }
}
