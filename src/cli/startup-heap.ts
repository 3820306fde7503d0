import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Start-up loads some 25 MiB of code and metadata that live as long as the process. Copied through
 * V8's young generation, they make it double its semi-spaces up to their maximum (2 × 16 MiB), which
 * then stay committed, nearly empty, until V8's memory reducer finds the process idle, 10 to 60 s
 * later: over 20 MiB of RSS for nothing. So ncps keeps the young generation at its initial size
 * while it loads and starts (a few more scavenges, each short), and gives V8 its default growth back
 * once `serve` listens: under load the young generation grows as it always would. An operator who
 * sets the flag on node's command line keeps their value (NODE_OPTIONS does not take it).
 */
const FLAG = 'semi-space-growth-factor';
const COMPACT_FLAG = 'compact-on-every-full-gc';
const V8_DEFAULT_GROWTH_FACTOR = 2;

let held = false;

/** Called first thing by main.ts, before the application's modules load. */
export function holdYoungGeneration(): void {
  if (process.execArgv.some((arg) => arg.includes(FLAG))) return;
  setFlagsFromString(`--${FLAG}=1`);
  held = true;
}

/** Lets the young generation grow again (when it was held). */
export function startupComplete(): void {
  if (!held) return;
  setFlagsFromString(`--${FLAG}=${V8_DEFAULT_GROWTH_FACTOR}`);
  held = false;
}

/**
 * Once the application is built, and before it listens: one full, compacting collection. Start-up
 * leaves some 6 MiB of garbage in the old generation (module loading, metadata, migrations), spread
 * over pages that stay committed until V8's memory reducer finds the process idle, 10 to 60 s later.
 * Collecting it now, with compaction so that emptied pages go back to the OS, costs one pause of a few
 * tens of milliseconds while no request can be waiting yet. V8 offers no such call without its
 * `--expose-gc` flag, so the flag is on only while the function is fetched (an operator's own
 * `--expose-gc` or compaction flag is left as it is).
 */
export function compactStartupHeap(): void {
  const compactsAlready = process.execArgv.some((arg) => arg.includes(COMPACT_FLAG));
  if (!compactsAlready) setFlagsFromString(`--${COMPACT_FLAG}`);
  try {
    collectGarbage();
  } finally {
    if (!compactsAlready) setFlagsFromString(`--no-${COMPACT_FLAG}`);
  }
}

function collectGarbage(): void {
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') {
    (exposed as () => void)();
    return;
  }
  setFlagsFromString('--expose-gc');
  try {
    (runInNewContext('gc') as () => void)();
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
