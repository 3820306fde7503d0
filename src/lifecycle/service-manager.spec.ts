import { Logger } from '@nestjs/common';
import { notifyReady } from './service-manager';

describe('notifyReady', () => {
  let warnings: unknown[][];
  let infos: unknown[][];

  beforeEach(() => {
    warnings = [];
    infos = [];
    jest.spyOn(Logger.prototype, 'warn').mockImplementation((...args: unknown[]) => void warnings.push(args));
    jest.spyOn(Logger.prototype, 'log').mockImplementation((...args: unknown[]) => void infos.push(args));
  });
  afterEach(() => jest.restoreAllMocks());

  it('does nothing when systemd did not start ncps (no NOTIFY_SOCKET)', async () => {
    await notifyReady({ PATH: '/nonexistent' }, 'serving');
    expect([warnings, infos]).toEqual([[], []]);
  });

  it('warns, without failing, when systemd-notify is missing', async () => {
    await notifyReady({ NOTIFY_SOCKET: '/run/nothing.sock', PATH: '/nonexistent' }, 'serving');
    expect(warnings).toEqual([
      [{ error: 'NOTIFY_SOCKET is set but systemd-notify is not installed' }, 'could not notify systemd that ncps is ready'],
    ]);
  });

  it('warns when systemd does not take the message', async () => {
    await notifyReady({ NOTIFY_SOCKET: '/nonexistent/notify.sock', PATH: process.env.PATH }, 'serving');
    expect(warnings).toEqual([[{ error: expect.any(String) }, 'could not notify systemd that ncps is ready']]);
    expect(infos).toEqual([]);
  });
});
