import { FINDING_KINDS, Finding, FsckListener, FsckOptions, FsckPhase, FsckProgress, FsckSummary } from './fsck.findings';

export interface ReporterOutput {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean };
}

const PHASE_LABELS: Record<FsckPhase, string> = {
  'nar-files': 'NAR files',
  narinfos: 'narinfos',
  objects: 'stored objects',
};

/** Redraws of the progress line at most this often. */
const PROGRESS_INTERVAL_MS = 200;

/**
 * How `ncps fsck` talks: one line per finding on stdout as it is made (what, where, what was done),
 * a progress line on stderr when that is a terminal, and a closing summary — or, with `json`, only one
 * JSON document on stdout at the end, for scripts and monitoring.
 */
export class FsckReporter implements FsckListener {
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly out: ReporterOutput,
    private readonly json: boolean,
    private readonly now: () => number = Date.now,
  ) {}

  finding(finding: Finding): void {
    if (this.json) return;
    this.clearProgress();
    this.out.stdout.write(`${describeFinding(finding)}\n`);
  }

  progress({ phase, done, total }: FsckProgress): void {
    if (!this.out.stderr.isTTY) return;
    const now = this.now();
    const last = total !== undefined && done === total;
    if (done !== 0 && !last && now - this.lastDraw < PROGRESS_INTERVAL_MS) return;
    this.lastDraw = now;
    this.drawn = true;
    this.out.stderr.write(`\r\x1b[Kfsck: checking ${PHASE_LABELS[phase]} ${done}${total === undefined ? '' : `/${total}`}`);
  }

  summary(summary: FsckSummary, options: FsckOptions): void {
    this.clearProgress();
    if (this.json) {
      const byKind = Object.fromEntries(FINDING_KINDS.map((kind) => [kind, summary.byKind[kind]]));
      const report = {
        clean: summary.clean,
        repair: options.repair,
        verifyContent: options.verifyContent,
        left: summary.left,
        counts: summary.counts,
        byKind,
        findings: summary.findings,
        findingsTruncated: summary.findingsTruncated,
      };
      this.out.stdout.write(`${JSON.stringify(report)}\n`);
      return;
    }
    this.out.stdout.write(`${describeSummary(summary, options)}\n`);
  }

  private clearProgress(): void {
    if (!this.drawn) return;
    this.out.stderr.write('\r\x1b[K');
    this.drawn = false;
  }
}

export function describeFinding(finding: Finding): string {
  const line = `${finding.kind} ${finding.key}: ${finding.detail}`;
  switch (finding.outcome) {
    case 'found':
      return line;
    case 'repaired':
      return `${line} — repaired: ${finding.action}`;
    case 'in-use':
      return `${line} — not repaired: ${finding.action}`;
    case 'gone':
      return `${line} — ${finding.action}`;
  }
}

export function describeSummary(summary: FsckSummary, options: FsckOptions): string {
  const { counts } = summary;
  const checked =
    `checked ${counts.narFiles} NAR files, ${counts.narinfos} narinfos, ${counts.objects} stored objects` +
    (options.verifyContent ? `; verified ${counts.bytesVerified} bytes (${counts.unverifiable} without a FileHash to check)` : '');
  const kinds = FINDING_KINDS.filter((kind) => summary.byKind[kind].found > 0).map((kind) => {
    const { found, repaired } = summary.byKind[kind];
    return options.repair ? `${found} ${kind} (${repaired} repaired)` : `${found} ${kind}`;
  });
  if (kinds.length === 0) return `fsck: ${checked}; clean`;
  const tail = summary.left === 0 ? 'all repaired' : `${summary.left} left${options.repair ? '' : ' (run with --repair to fix them)'}`;
  return `fsck: ${checked}; found ${kinds.join(', ')}; ${tail}`;
}
