import { Client, QueryResultRow } from 'pg';
import type { PgConnectionOptions } from 'src/database';
import { backoffDelay, RetryPolicy } from '../lock.backoff';
import { LockBackendError } from './lock.driver';
import { withTimeout } from 'src/common/deadline';

export interface LockSessionOptions {
  /** From postgresConnectionOptions: the query pool's options, TLS included. */
  connection: PgConnectionOptions;
  /** LISTEN channel of release notifications. */
  channel: string;
  /** A lock query that takes longer has an unknown outcome: the session is dropped. */
  queryTimeoutMs: number;
  /** Idle sessions are probed this often, so a dead connection is noticed while locks are held. */
  heartbeatMs: number;
  reconnect: RetryPolicy;
  onNotification: (payload: string) => void;
  onLost: (error: Error) => void;
  onRestored: () => void;
}

/**
 * One dedicated PostgreSQL connection holding session-level advisory locks for any number of holders
 * (never a connection of the query pool). When the connection is lost the server releases everything
 * it held: every lease taken on it is aborted, and a new connection is made in the background.
 * `generation` counts connections, so a lease knows whether the connection it was taken on still exists.
 */
export class LockSession {
  private client: Client | undefined;
  private connected = false;
  private closed = false;
  private everLost = false;
  private reconnectAttempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly leases = new Set<AbortController>();
  private readonly waiters = new Set<() => void>();
  private generationCount = 0;
  /** The tail of this session's query queue. */
  private queue: Promise<unknown> = Promise.resolve();
  private lastError: string | undefined;

  constructor(private readonly options: LockSessionOptions) {
    this.heartbeat = setInterval(() => {
      if (this.connected) this.query('SELECT 1').catch(() => undefined);
    }, options.heartbeatMs);
    this.heartbeat.unref();
    this.connect();
  }

  get generation(): number {
    return this.generationCount;
  }

  /** Resolves when connected, or after `timeoutMs`. */
  async waitConnected(timeoutMs: number): Promise<void> {
    if (this.connected) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
    });
  }

  /**
   * Runs `sql` on this session, after the queries already queued (one connection runs one query at a
   * time; pg 8 queues concurrent calls itself but deprecates it). The timeout counts from the start.
   */
  query<R extends QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    const client = this.client;
    if (!client || !this.connected) {
      return Promise.reject(new LockBackendError(`PostgreSQL lock session not connected${this.lastError ? `: ${this.lastError}` : ''}`));
    }
    const run = this.queue.then(() => this.run<R>(client, sql, params));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async run<R extends QueryResultRow>(client: Client, sql: string, params: unknown[]): Promise<R[]> {
    if (this.client !== client) throw new LockBackendError(`PostgreSQL lock session lost${this.lastError ? `: ${this.lastError}` : ''}`);
    const { queryTimeoutMs } = this.options;
    try {
      return (await withTimeout(client.query<R>(sql, params), queryTimeoutMs, `lock query timed out after ${queryTimeoutMs} ms`)).rows;
    } catch (error) {
      // The outcome is unknown (a lock may have been granted): dropping the session makes the server
      // release everything it held, so no lock can leak.
      void this.lose(client, asError(error));
      throw new LockBackendError(`PostgreSQL lock query failed: ${asError(error).message}`, { cause: error });
    }
  }

  /** Watches a lock taken on `generation`: its signal aborts when that connection is lost. */
  register(generation: number): AbortController {
    const controller = new AbortController();
    if (generation !== this.generationCount) controller.abort(new LockBackendError('PostgreSQL lock session lost'));
    else this.leases.add(controller);
    return controller;
  }

  /** Runs `sql` to give back a lock taken on `generation`, unless that connection (and the lock) is gone. */
  async release(controller: AbortController, generation: number, sql: string, params: unknown[]): Promise<void> {
    this.leases.delete(controller);
    if (generation !== this.generationCount || controller.signal.aborted) return;
    await this.query(sql, params);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.reconnectTimer);
    const client = this.client;
    if (client) await this.lose(client, new Error('lock session closed'));
  }

  private connect(): void {
    const { connection } = this.options;
    const client = new Client({
      ...connection,
      application_name: connection.application_name ?? 'ncps-locks',
      keepAlive: true,
      connectionTimeoutMillis: connection.connectionTimeoutMillis ?? 5000,
    });
    this.client = client;
    client.on('error', (error) => void this.lose(client, error));
    client.on('end', () => void this.lose(client, new Error('connection ended')));
    client.on('notification', ({ channel, payload }) => {
      if (channel === this.options.channel && payload) this.options.onNotification(payload);
    });
    client
      .connect()
      .then(() => client.query(`LISTEN "${this.options.channel}"`))
      .then(() => {
        if (this.client !== client) return;
        this.connected = true;
        this.reconnectAttempt = 0;
        this.lastError = undefined;
        for (const wake of [...this.waiters]) wake();
        if (this.everLost) this.options.onRestored();
      })
      .catch((error: unknown) => this.lose(client, asError(error)));
  }

  /** Forgets `client` (if it is still the current one); resolves when its connection is closed. */
  private lose(client: Client, error: Error): Promise<void> {
    if (this.client !== client) return Promise.resolve();
    const wasConnected = this.connected;
    this.client = undefined;
    this.connected = false;
    this.generationCount += 1;
    this.lastError = error.message;
    const lost = new LockBackendError(`PostgreSQL lock session lost: ${error.message}`, { cause: error });
    for (const lease of this.leases) lease.abort(lost);
    this.leases.clear();
    client.removeAllListeners('notification');
    client.on('error', () => undefined);
    const ended = client.end().catch(() => undefined);
    if (this.closed) return ended;
    if (wasConnected) {
      this.everLost = true;
      this.options.onLost(error);
    }
    this.reconnectTimer = setTimeout(() => this.connect(), backoffDelay(this.reconnectAttempt++, this.options.reconnect));
    return ended;
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
