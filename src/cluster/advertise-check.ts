import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { InstanceIdentity } from './instance-identity';

/** The route that answers this instance's id (see InstanceController). */
export const INSTANCE_PATH = '/_ncps/instance';
const ANSWER_TIMEOUT_MS = 2_000;
/** While the check fails, it is repeated this often: a name that resolves late heals on its own. */
const RECHECK_MS = 30_000;
export const ADVERTISE_FIX =
  "set --server-advertise-url to the URL at which the other instances reach this one (its own address, not the load balancer's)";

export type AdvertiseCheckState =
  { state: 'skipped'; reason: string } | { state: 'pending' } | { state: 'ok' } | { state: 'failed'; reason: string };

/** What asking `<advertise URL>/_ncps/instance` gave: an HTTP answer, or why there was none. */
export type SelfCheckAnswer = { status: number; body?: unknown } | { error: string };

/** Whether the answer at the advertise URL came from this instance (id `expectedId`), and if not, why. */
export function judgeSelfCheck(expectedId: string, answer: SelfCheckAnswer): { ok: true } | { ok: false; reason: string } {
  if ('error' in answer) return { ok: false, reason: `unreachable: ${answer.error}` };
  if (answer.status !== 200) return { ok: false, reason: `answered HTTP ${answer.status}: not an ncps instance, or not this one` };
  const id = (answer.body as { id?: unknown } | undefined)?.id;
  if (id === expectedId) return { ok: true };
  if (typeof id === 'string')
    return { ok: false, reason: 'another ncps instance answered (a load balancer, or a name shared by several instances?)' };
  return { ok: false, reason: 'the answer is not an ncps instance id' };
}

/**
 * With a distributed lock backend, checks once the server listens that the advertise URL reaches this
 * very instance: the others stream its downloads from there. A failure is logged as an error naming
 * the fix and shown in /health details (see ClusterHealthIndicator); serving goes on regardless.
 */
@Injectable()
export class AdvertiseCheck implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('Cluster');
  private current: AdvertiseCheckState;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    private readonly identity: InstanceIdentity,
  ) {
    this.current =
      config.lock.backend === 'local'
        ? { state: 'skipped', reason: 'local locks: a single instance streams to no one' }
        : { state: 'pending' };
  }

  get state(): AdvertiseCheckState {
    return this.current;
  }

  onApplicationBootstrap(): void {
    if (this.current.state === 'pending') void this.identity.listening.then(() => this.run());
  }

  onModuleDestroy(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async run(): Promise<void> {
    const url = this.identity.advertiseUrl!;
    const verdict = judgeSelfCheck(this.identity.id, await this.ask(url));
    if (this.stopped) return;
    if (verdict.ok) {
      if (this.current.state === 'failed') this.logger.log({ advertise_url: url }, 'advertise URL reaches this instance now');
      this.current = { state: 'ok' };
      return;
    }
    if (this.current.state !== 'failed' || this.current.reason !== verdict.reason) {
      this.logger.error({ advertise_url: url, reason: verdict.reason, fix: ADVERTISE_FIX }, 'advertise URL does not reach this instance');
    }
    this.current = { state: 'failed', reason: verdict.reason };
    this.timer = setTimeout(() => void this.run(), RECHECK_MS);
    this.timer.unref();
  }

  private async ask(url: string): Promise<SelfCheckAnswer> {
    const headers: Record<string, string> = {};
    if (this.config.cache.getToken) headers.authorization = `Bearer ${this.config.cache.getToken}`;
    try {
      // No redirects: the token goes to the advertise URL only, and a redirect is not this instance.
      const res = await fetch(`${url}${INSTANCE_PATH}`, { headers, redirect: 'manual', signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS) });
      if (res.status !== 200) {
        await res.body?.cancel();
        return { status: res.status };
      }
      const body: unknown = await res.json().catch(() => undefined);
      return { status: 200, body };
    } catch (e) {
      return { error: describeFailure(e) };
    }
  }
}

function describeFailure(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError') return `no answer within ${ANSWER_TIMEOUT_MS / 1000} s`;
  return err.cause?.code ?? err.cause?.message ?? err.message;
}
