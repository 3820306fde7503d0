import { FINDING_KINDS, FsckSummary } from './fsck.findings';
import { FsckReporter } from './fsck.reporter';

function output(isTTY: boolean) {
  const written = { stdout: '', stderr: '' };
  return {
    written,
    out: {
      stdout: { write: (text: string) => (written.stdout += text) },
      stderr: { isTTY, write: (text: string) => (written.stderr += text) },
    },
  };
}

function summaryWith(found: number, repaired: number): FsckSummary {
  const byKind = Object.fromEntries(FINDING_KINDS.map((kind) => [kind, { found: 0, repaired: 0 }])) as FsckSummary['byKind'];
  byKind['orphan-object'] = { found, repaired };
  const finding = {
    kind: 'orphan-object' as const,
    key: 'nar/a.nar.xz',
    detail: 'neither',
    outcome: repaired ? ('repaired' as const) : ('found' as const),
  };
  return {
    clean: found === repaired,
    counts: { narFiles: 2, narinfos: 3, objects: 4, bytesVerified: 0, unverifiable: 0 },
    byKind,
    left: found - repaired,
    findings: found ? [finding] : [],
    findingsTruncated: false,
  };
}

describe('FsckReporter', () => {
  const options = { repair: false, verifyContent: false };

  it('prints a line per finding and a summary naming what is left', () => {
    const { out, written } = output(false);
    const sut = new FsckReporter(out, false);

    sut.finding({ kind: 'orphan-object', key: 'nar/a.nar.xz', detail: 'neither a row nor a narinfo', outcome: 'found' });
    sut.summary(summaryWith(1, 0), options);

    expect(written.stdout).toBe(
      'orphan-object nar/a.nar.xz: neither a row nor a narinfo\n' +
        'fsck: checked 2 NAR files, 3 narinfos, 4 stored objects; found 1 orphan-object; 1 left (run with --repair to fix them)\n',
    );
    expect(written.stderr).toBe('');
  });

  it('says what a repair did, and calls a clean run clean', () => {
    const { out, written } = output(false);
    const sut = new FsckReporter(out, false);

    sut.finding({
      kind: 'missing-object',
      key: 'nar/a.nar.xz',
      detail: 'gone',
      outcome: 'in-use',
      action: 'being downloaded or uploaded; left alone',
    });
    sut.summary(summaryWith(0, 0), { repair: true, verifyContent: true });

    expect(written.stdout).toBe(
      'missing-object nar/a.nar.xz: gone — not repaired: being downloaded or uploaded; left alone\n' +
        'fsck: checked 2 NAR files, 3 narinfos, 4 stored objects; verified 0 bytes (0 without a FileHash to check); clean\n',
    );
  });

  it('prints only one JSON document with --json', () => {
    const { out, written } = output(false);
    const sut = new FsckReporter(out, true);

    sut.finding({ kind: 'orphan-object', key: 'nar/a.nar.xz', detail: 'neither', outcome: 'repaired', action: 'deleted the object' });
    sut.summary(summaryWith(1, 1), { repair: true, verifyContent: false });

    const report = JSON.parse(written.stdout);
    expect(report).toMatchObject({ clean: true, repair: true, left: 0, byKind: { 'orphan-object': { found: 1, repaired: 1 } } });
    expect(report.findings).toHaveLength(1);
    expect(written.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('draws progress on a terminal only, at most every 200 ms, and clears it before a line', () => {
    let now = 0;
    const tty = output(true);
    const sut = new FsckReporter(tty.out, false, () => now);

    sut.progress({ phase: 'nar-files', done: 0, total: 10 });
    now = 50;
    sut.progress({ phase: 'nar-files', done: 1, total: 10 });
    now = 300;
    sut.progress({ phase: 'nar-files', done: 2, total: 10 });
    sut.finding({ kind: 'orphan-object', key: 'nar/a.nar.xz', detail: 'x', outcome: 'found' });

    expect(tty.written.stderr).toBe('\r\x1b[Kfsck: checking NAR files 0/10\r\x1b[Kfsck: checking NAR files 2/10\r\x1b[K');

    const pipe = output(false);
    new FsckReporter(pipe.out, false).progress({ phase: 'objects', done: 5 });
    expect(pipe.written.stderr).toBe('');
  });
});
