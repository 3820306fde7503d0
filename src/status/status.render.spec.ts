import { NcpsConfig } from 'src/config/config';
import { configSummary, publicUrl } from './status.config';
import { StatusView, barChart, escapeHtml, formatBytes, formatRatio, renderStatusPage } from './status.render';

function view(over: Partial<StatusView> = {}): StatusView {
  return {
    version: '1.2.3',
    now: new Date('2026-01-01T00:00:00Z'),
    uptimeSeconds: 3725,
    config: [['hostname', 'cache.example']],
    intervals: [
      { at: 1, hits: 3, misses: 1, servedBytes: 2048, fetchedBytes: 1024 },
      { at: 2, hits: 0, misses: 0, servedBytes: 0, fetchedBytes: 0 },
      { at: 3, hits: 1, misses: 3, servedBytes: 1024, fetchedBytes: 4096 },
    ],
    storedBytes: 512 * 1024,
    maxSizeBytes: 1024 * 1024,
    downloads: [{ key: 'nar/abc.nar', written: 250, expected: 1000 }],
    checks: [{ name: 'locks', status: 'up', details: { backend: 'redis', mode: 'normal' } }],
    refreshSeconds: 10,
    servedCounted: true,
    ...over,
  };
}

describe('renderStatusPage', () => {
  it('shows the figures of the last hour, the storage against its limit and the running downloads', () => {
    const html = renderStatusPage(view());
    expect(html).toContain('<meta http-equiv="refresh" content="10">');
    expect(html).toContain('<span id="version">1.2.3</span>');
    expect(html).toContain('<span id="uptime">1h 2m</span>');
    expect(html).toContain('id="hit-ratio">50.0%<'); // 4 hits, 4 misses
    expect(html).toContain('id="served">3.0 KiB<');
    expect(html).toContain('id="fetched">5.0 KiB<');
    expect(html).toContain('512.0 KiB of 1.0 MiB (50.0%)');
    expect(html).toContain('250 B of 1000 B (25%)');
    expect(html).toContain('backend: redis, mode: normal');
    expect(html).toContain('not run since start');
    const ran = renderStatusPage(
      view({ lastLru: { at: new Date('2026-01-01T03:00:00Z'), result: 'completed', evictedEntries: 3, evictedBytes: 2048 } }),
    );
    expect(ran).toContain('2026-01-01T03:00:00.000Z: completed, evicted 3 narinfos, 2.0 KiB of NARs');
  });

  it('says bytes served are not counted without --prometheus-enabled', () => {
    expect(renderStatusPage(view({ servedCounted: false }))).toContain(
      'id="served">–</div><div class="muted">counted with --prometheus-enabled',
    );
  });

  it('uses no external asset and no script', () => {
    const html = renderStatusPage(view());
    expect(html).not.toMatch(/<script|<link|src=|url\(|@import/i);
    // The only URL is the SVG namespace, which is not fetched.
    expect(html.match(/https?:\/\/[^"]*/g)).toEqual([
      'http://www.w3.org/2000/svg',
      'http://www.w3.org/2000/svg',
      'http://www.w3.org/2000/svg',
    ]);
  });

  it('escapes every dynamic value', () => {
    const evil = '<img src=x onerror=alert(1)>"\'&';
    const html = renderStatusPage(
      view({
        version: evil,
        config: [[evil, evil]],
        downloads: [{ key: evil, written: 1 }],
        checks: [{ name: evil, status: evil, details: { [evil]: evil } }],
        lastLru: { at: new Date(0), result: evil, evictedBytes: 1, evictedEntries: 2 },
      }),
    );
    expect(html).not.toContain('<img');
    expect(html).toContain(escapeHtml(evil));
    expect(escapeHtml(evil)).toBe('&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;');
  });

  it('draws one bar per non-zero value, scaled to the largest', () => {
    const svg = barChart('t', [{ values: [1, 0, 4], colour: '#000', label: 'v' }]);
    const heights = [...svg.matchAll(/<rect x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)" fill="#000"/g)].map((m) => Number(m[1]));
    expect(heights).toEqual([19.5, 78]);
  });

  it('formats', () => {
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatRatio(0, 0)).toBe('–');
    expect(formatRatio(1, 2)).toBe('33.3%');
  });
});

describe('configSummary', () => {
  it('shows no secret and strips credentials from URLs', () => {
    const config = {
      prometheusEnabled: false,
      cache: {
        hostname: 'h',
        getToken: 'GETSECRET',
        putToken: 'PUTSECRET',
        signNarinfo: true,
        allowPut: false,
        allowDelete: false,
        maxNarSizeBytes: 1024,
      },
      upstream: { urls: ['https://user:UPSECRET@cache.example/path?token=QSECRET'], httpProxy: 'http://u:PROXYSECRET@proxy' },
      storage: {
        kind: 's3',
        s3: {
          bucket: 'b',
          endpoint: 'https://AKID:S3SECRET@s3.example',
          accessKeyId: 'AKIDSECRET',
          secretAccessKey: 'S3KEYSECRET',
          forcePathStyle: true,
        },
      },
      database: { url: 'postgres://u:DBSECRET@db/x', dialect: 'postgres' },
      lock: { backend: 'redis', allowDegradedMode: false, redis: { password: 'REDISSECRET' } },
    } as unknown as NcpsConfig;
    const html = renderStatusPage(view({ config: configSummary(config) }));
    expect(html).not.toMatch(/SECRET|user:|AKID/);
    expect(html).toContain('https://cache.example/path');
    expect(html).toContain('s3 bucket b at https://s3.example');
    expect(html).toContain('required');
  });

  it('publicUrl drops userinfo, query and fragment', () => {
    expect(publicUrl('http://a:b@h:8080/p?x=1#y')).toBe('http://h:8080/p');
    expect(publicUrl('not a url')).toBe('(unparseable URL)');
  });
});
