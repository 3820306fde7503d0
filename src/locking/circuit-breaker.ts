export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Consecutive connection failures that open the breaker. */
  failureThreshold: number;
  /** How long the breaker stays open before one trial call may probe the backend again. */
  cooldownMs: number;
  now?: () => number;
}

/**
 * Stops hammering a lock backend that is down. Closed: every call may use the backend, and
 * `failureThreshold` consecutive failures open it. Open: no call uses the backend until `cooldownMs`
 * has passed. Half-open: exactly one trial call goes through; its success closes the breaker, its
 * failure opens it for another cool-down.
 *
 * Every `tryPass()` that returns true must be followed by `success()` or `failure()`.
 */
export class CircuitBreaker {
  private current: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private trialInFlight = false;
  private readonly now: () => number;

  constructor(
    private readonly options: CircuitBreakerOptions,
    private readonly onChange: (state: BreakerState, previous: BreakerState) => void = () => undefined,
  ) {
    this.now = options.now ?? Date.now;
  }

  get state(): BreakerState {
    return this.current;
  }

  /** True while calls are refused without trying (open and still cooling down, or a trial in flight). */
  get refusing(): boolean {
    if (this.current === 'open') return this.now() - this.openedAt < this.options.cooldownMs;
    return this.current === 'half-open' && this.trialInFlight;
  }

  /** Whether this call may use the backend. */
  tryPass(): boolean {
    if (this.current === 'closed') return true;
    if (this.refusing) return false;
    if (this.current === 'open') this.transition('half-open');
    this.trialInFlight = true;
    return true;
  }

  success(): void {
    this.failures = 0;
    this.trialInFlight = false;
    if (this.current !== 'closed') this.transition('closed');
  }

  failure(): void {
    this.trialInFlight = false;
    this.failures += 1;
    if (this.current === 'half-open' || (this.current === 'closed' && this.failures >= this.options.failureThreshold)) {
      this.openedAt = this.now();
      this.transition('open');
    } else if (this.current === 'open') {
      // A failure reported by a call that passed before the breaker opened: restart the cool-down.
      this.openedAt = this.now();
    }
  }

  private transition(next: BreakerState): void {
    const previous = this.current;
    this.current = next;
    this.onChange(next, previous);
  }
}
