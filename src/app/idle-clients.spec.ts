import { SilentConnection, idleVerdict } from './idle-clients';

const silent = (c: Partial<SilentConnection>): SilentConnection => ({
  requestInFlight: true,
  bodyComplete: true,
  unsentBytes: 0,
  silentPeriods: 0,
  ...c,
});

describe('idleVerdict: whose silence is it', () => {
  it('closes a connection with no request in flight (kept alive, or headers never finished)', () => {
    expect(idleVerdict(silent({ requestInFlight: false }))).toBe('close');
  });

  it('closes a connection whose client stopped reading its response', () => {
    expect(idleVerdict(silent({ unsentBytes: 65536 }))).toBe('close');
  });

  it('waits while ncps itself is the slow side: request received, nothing left unsent', () => {
    expect(idleVerdict(silent({}))).toBe('wait');
    expect(idleVerdict(silent({ silentPeriods: 5 }))).toBe('wait');
  });

  it('gives a body the client stopped sending one more period (its watchdog answers 408), then closes', () => {
    expect(idleVerdict(silent({ bodyComplete: false, silentPeriods: 0 }))).toBe('wait');
    expect(idleVerdict(silent({ bodyComplete: false, silentPeriods: 1 }))).toBe('close');
  });
});
