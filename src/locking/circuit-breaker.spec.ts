import { BreakerState, CircuitBreaker } from './circuit-breaker';

describe('CircuitBreaker', () => {
  let now: number;
  let changes: Array<[BreakerState, BreakerState]>;
  let sut: CircuitBreaker;

  beforeEach(() => {
    now = 1_000;
    changes = [];
    sut = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 500, now: () => now }, (state, previous) =>
      changes.push([state, previous]),
    );
  });

  const fail = (times: number): void => {
    for (let i = 0; i < times; i++) {
      expect(sut.tryPass()).toBe(true);
      sut.failure();
    }
  };

  it('stays closed below the threshold of consecutive failures', () => {
    fail(2);
    expect(sut.state).toBe('closed');
    expect(sut.refusing).toBe(false);
  });

  it('counts consecutive failures only: a success resets the count', () => {
    fail(2);
    sut.success();
    fail(2);
    expect(sut.state).toBe('closed');
  });

  it('opens after the threshold and refuses calls during the cool-down', () => {
    fail(3);
    expect(sut.state).toBe('open');
    expect(changes).toEqual([['open', 'closed']]);
    now += 499;
    expect(sut.refusing).toBe(true);
    expect(sut.tryPass()).toBe(false);
  });

  it('lets exactly one trial through after the cool-down (half-open)', () => {
    fail(3);
    now += 500;
    expect(sut.refusing).toBe(false);
    expect(sut.tryPass()).toBe(true);
    expect(sut.state).toBe('half-open');
    expect(sut.tryPass()).toBe(false);
    expect(sut.refusing).toBe(true);
  });

  it('closes when the trial succeeds', () => {
    fail(3);
    now += 500;
    sut.tryPass();
    sut.success();
    expect(sut.state).toBe('closed');
    expect(sut.tryPass()).toBe(true);
    expect(changes.map(([state]) => state)).toEqual(['open', 'half-open', 'closed']);
  });

  it('opens again for a full cool-down when the trial fails', () => {
    fail(3);
    now += 500;
    sut.tryPass();
    sut.failure();
    expect(sut.state).toBe('open');
    now += 499;
    expect(sut.tryPass()).toBe(false);
    now += 1;
    expect(sut.tryPass()).toBe(true);
  });

  it('restarts the cool-down on a late failure of a call that passed before it opened', () => {
    fail(3);
    now += 300;
    sut.failure();
    now += 300;
    expect(sut.tryPass()).toBe(false);
  });
});
