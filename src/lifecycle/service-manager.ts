import { Logger } from '@nestjs/common';
import { spawn } from 'node:child_process';

/** systemd-notify waits for systemd to take the message; a socket nobody reads must not hang start-up. */
const NOTIFY_TIMEOUT_MS = 10_000;

const logger = new Logger('Server');

/**
 * Tells systemd that ncps serves (unit `Type=notify`), when systemd started it (NOTIFY_SOCKET is set);
 * does nothing otherwise. Node cannot write to a unix datagram socket, so this runs `systemd-notify
 * --ready`, which needs `NotifyAccess=all` in the unit. systemd-notify waits until systemd has
 * processed the message, so systemd can still tell which unit it came from (see systemd-notify(1)).
 * A failure is logged, never fatal: the unit's start timeout is what reports it to the operator.
 */
export async function notifyReady(env: NodeJS.ProcessEnv, status: string): Promise<void> {
  if (!env.NOTIFY_SOCKET) return;
  let timer: NodeJS.Timeout | undefined;
  const problem = await new Promise<string | undefined>((resolve) => {
    const child = spawn('systemd-notify', ['--ready', `--status=${status}`], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    // Our own timer, not spawn's `timeout`: Node leaves that one running when the spawn itself fails.
    timer = setTimeout(() => child.kill('SIGKILL'), NOTIFY_TIMEOUT_MS);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', (e: NodeJS.ErrnoException) =>
      resolve(e.code === 'ENOENT' ? 'NOTIFY_SOCKET is set but systemd-notify is not installed' : e.message),
    );
    child.once('close', (code, signal) => resolve(code === 0 ? undefined : stderr.trim() || `systemd-notify ended with ${signal ?? code}`));
  }).finally(() => clearTimeout(timer));
  if (problem) logger.warn({ error: problem }, 'could not notify systemd that ncps is ready');
  else logger.log({ status }, 'notified systemd: ready');
}

/**
 * SIGHUP neither reloads nor reopens anything: the configuration is read once (flags, file and
 * environment are merged and validated at start), and logs go to stdout, which has no file to
 * reopen. Node's default for SIGHUP is to exit, so the habitual `kill -HUP` ("reload") would stop
 * the cache: it is logged and ignored instead.
 */
export function ignoreHangups(): void {
  process.on('SIGHUP', () => logger.warn('SIGHUP ignored: restart ncps to apply configuration changes'));
}
