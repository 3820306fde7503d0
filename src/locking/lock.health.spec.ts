import { HealthIndicatorService } from '@nestjs/terminus';
import { NcpsConfig } from 'src/config/config';
import { LockHealthIndicator } from './lock.health';
import { LockBackendStatus, LockPort } from './lock.port';

function fakeLock(status: LockBackendStatus, problem?: string): LockPort {
  return {
    status: () => status,
    check: async () => {
      if (problem) throw new Error(problem);
    },
  } as unknown as LockPort;
}

const config = (allowDegradedMode: boolean): NcpsConfig => ({ lock: { allowDegradedMode } }) as unknown as NcpsConfig;

describe('LockHealthIndicator', () => {
  const health = new HealthIndicatorService();

  it('is up with the backend and its mode when reachable', async () => {
    const sut = new LockHealthIndicator(fakeLock({ backend: 'redis', mode: 'distributed', reachable: true }), health, config(false));
    await expect(sut.isHealthy()).resolves.toEqual({ locks: { status: 'up', backend: 'redis', mode: 'distributed', reachable: true } });
  });

  it('is up for local locks', async () => {
    const sut = new LockHealthIndicator(fakeLock({ backend: 'local', mode: 'local', reachable: true }), health, config(false));
    await expect(sut.isHealthy()).resolves.toMatchObject({ locks: { status: 'up', backend: 'local', mode: 'local' } });
  });

  it('is down when the distributed backend is unreachable and degraded mode is not allowed', async () => {
    const sut = new LockHealthIndicator(
      fakeLock({ backend: 'postgres', mode: 'distributed', reachable: false }, 'PostgreSQL unreachable'),
      health,
      config(false),
    );
    await expect(sut.isHealthy()).resolves.toEqual({
      locks: { status: 'down', backend: 'postgres', mode: 'distributed', reachable: false, detail: 'PostgreSQL unreachable' },
    });
  });

  it('is up but degraded when the backend is unreachable and degraded mode is allowed', async () => {
    const sut = new LockHealthIndicator(
      fakeLock({ backend: 'redis', mode: 'degraded', reachable: false }, 'Redis unreachable'),
      health,
      config(true),
    );
    await expect(sut.isHealthy()).resolves.toEqual({
      locks: { status: 'up', backend: 'redis', mode: 'degraded', reachable: false, detail: 'Redis unreachable' },
    });
  });
});
