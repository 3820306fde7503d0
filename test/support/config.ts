import { buildConfig } from 'src/config/build-config';
import { NcpsConfig } from 'src/config/config';
import { resolveOptions } from 'src/config/resolve';

/** A configuration built as the CLI builds it, from `flags` (no upstream unless given), on a fixed machine. */
export function testConfig(flags: Record<string, unknown> = {}, env: Record<string, string> = {}): NcpsConfig {
  return buildConfig(resolveOptions({ flags: { 'cache-upstream-url': [], ...flags }, env }), {
    hostname: 'box',
    tempDir: '/tmp',
    homeDir: '/home/u',
  });
}
