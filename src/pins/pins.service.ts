import { Injectable } from '@nestjs/common';
import { NotFoundError } from 'src/common/errors';
import { NarInfoRepository } from 'src/database';
import { Closure, walkClosure } from './closure';
import { PinRepository } from './pin.repository';

/** A pin as shown by `GET /pins` and `ncps pin ls`. */
export interface PinView {
  hash: string;
  /** ISO 8601. */
  createdAt: string;
  /** ISO 8601, or null for a pin without a TTL. */
  expiresAt: string | null;
  /** False once the TTL has passed: the pin protects nothing any more (the next LRU run removes it). */
  active: boolean;
  /** Whether the narinfo is stored; a pin of a path not stored yet applies once it arrives. */
  stored: boolean;
}

/** What the pins protect during one LRU run. */
export interface PinProtection {
  /** Pins in force. */
  pins: number;
  /** The stored closure of the pinned paths: hash → its NAR. */
  closure: Closure;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Pins: store paths whose whole closure (References, transitively) the LRU never evicts. A pin may
 * name a path that is not stored yet; it protects the path and its closure from when they arrive.
 */
@Injectable()
export class PinsService {
  constructor(
    private readonly pins: PinRepository,
    private readonly narInfos: NarInfoRepository,
  ) {}

  /** Pins `hash` (or renews its pin) until `now + ttlMs`, or for good without a TTL. */
  async pin(hash: string, ttlMs?: number, now = Date.now()): Promise<PinView> {
    const expiresAt = ttlMs === undefined ? null : now + ttlMs;
    await this.pins.pin(hash, now, expiresAt);
    const stored = (await this.narInfos.findReferencesOf([hash])).length > 0;
    return { hash, createdAt: iso(now), expiresAt: expiresAt === null ? null : iso(expiresAt), active: true, stored };
  }

  /** Removes the pin of `hash`; NotFoundError when there is none. */
  async unpin(hash: string): Promise<void> {
    if (!(await this.pins.unpin(hash))) throw new NotFoundError('no such pin');
  }

  async list(now = Date.now()): Promise<PinView[]> {
    return (await this.pins.list()).map((p) => ({
      hash: p.hash,
      createdAt: iso(p.createdAt),
      expiresAt: p.expiresAt === null ? null : iso(p.expiresAt),
      active: p.expiresAt === null || p.expiresAt > now,
      stored: p.stored,
    }));
  }

  /**
   * For an LRU run: drops the pins expired at `now`, then walks the References of the others once.
   * The walk reads the closure only (batched by hash), so its cost does not grow with the cache.
   */
  async protection(now = Date.now()): Promise<PinProtection> {
    await this.pins.deleteExpired(now);
    const roots = await this.pins.findActiveHashes(now);
    const closure = await walkClosure(roots, (hashes) => this.narInfos.findReferencesOf(hashes));
    return { pins: roots.length, closure };
  }
}
