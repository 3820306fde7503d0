import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNetrc, netrcCredentials, parseNetrc } from './upstream.netrc';

describe('parseNetrc', () => {
  it('reads machine entries on one line or several', () => {
    const sut = parseNetrc(
      'machine a.example login alice password pw1\n' + 'machine B.Example\n  login bob\n  account ignored\n  password pw2\n',
    );
    expect(netrcCredentials(sut, 'a.example')).toEqual({ login: 'alice', password: 'pw1' });
    expect(netrcCredentials(sut, 'b.example')).toEqual({ login: 'bob', password: 'pw2' });
    expect(netrcCredentials(sut, 'c.example')).toBeUndefined();
  });

  it('uses the default entry for hosts no machine names', () => {
    const sut = parseNetrc('machine a.example login alice password pw1\ndefault login anon password guest\n');
    expect(netrcCredentials(sut, 'a.example')?.login).toBe('alice');
    expect(netrcCredentials(sut, 'other.example')).toEqual({ login: 'anon', password: 'guest' });
  });

  it('keeps the first entry for a host, as curl does', () => {
    const sut = parseNetrc('machine a.example login first password 1\nmachine a.example login second password 2\n');
    expect(netrcCredentials(sut, 'a.example')?.login).toBe('first');
  });

  it('reads quoted tokens with escapes, skips comments and macro definitions', () => {
    const sut = parseNetrc(
      '# credentials\n' +
        'macdef init\ncd /pub\nmachine evil.example login mallory password x\n\n' +
        'machine a.example login "al ice" password "p\\"w d" # trailing comment\n',
    );
    expect(netrcCredentials(sut, 'a.example')).toEqual({ login: 'al ice', password: 'p"w d' });
    expect(netrcCredentials(sut, 'evil.example')).toBeUndefined();
  });

  it('ignores an entry without a login, and gives a login without password an empty one', () => {
    const sut = parseNetrc('machine a.example password lonely\nmachine b.example login bob\n');
    expect(netrcCredentials(sut, 'a.example')).toBeUndefined();
    expect(netrcCredentials(sut, 'b.example')).toEqual({ login: 'bob', password: '' });
  });
});

describe('loadNetrc', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ncps-netrc-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('answers null for a missing file', async () => {
    await expect(loadNetrc(join(dir, 'absent'))).resolves.toBeNull();
  });

  it('parses the file', async () => {
    await writeFile(join(dir, 'netrc'), 'machine a.example login alice password pw\n');
    const sut = await loadNetrc(join(dir, 'netrc'));
    expect(sut && netrcCredentials(sut, 'a.example')).toEqual({ login: 'alice', password: 'pw' });
  });

  it('rejects an unreadable path other than a missing one', async () => {
    await expect(loadNetrc(dir)).rejects.toMatchObject({ code: 'EISDIR' });
  });
});
