import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { LruService } from 'src/lru';
import { RunningApp, startApp } from 'test/support/app';
import { FakeUpstream } from 'test/support/fake-upstream';
import { fakePath } from 'test/support/fake-path';

const DASHBOARD = join(__dirname, '../../config/grafana/ncps-dashboard.json');
const ALERTS = join(__dirname, '../../config/prometheus/ncps-alerts.yaml');

interface Panel {
  title: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

/** Every PromQL expression of the dashboard: panel targets and the template variables' queries. */
function dashboardExpressions(text: string): string[] {
  const dashboard = JSON.parse(text) as { panels: Panel[]; templating: { list: { definition?: string }[] } };
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  return [
    ...panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...dashboard.templating.list.flatMap((v) => (v.definition ? [v.definition] : [])),
  ];
}

function alertExpressions(text: string): string[] {
  const rules = parse(text) as { groups: { rules: { alert: string; expr: string }[] }[] };
  return rules.groups.flatMap((g) => g.rules.map((r) => r.expr));
}

/** The ncps metric names an expression reads (histogram series keep their _bucket/_count/_sum suffix). */
const metricNames = (expr: string): string[] => [...expr.matchAll(/\bncps_[a-z0-9_]+/g)].map((m) => m[0]);

/**
 * The sample names a scrape can hold: each family declared by a `# TYPE` line, and for histograms
 * its _bucket, _count and _sum series. Declared families count even before their first sample: a
 * failure counter exists from the start, though no failure happened in the test.
 */
function exposedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_count', '_sum']) names.add(name + suffix);
  }
  return names;
}

/** Names read by `expressions` that the exposition lacks. */
const missingNames = (expressions: string[], exposition: string): string[] => {
  const exposed = exposedNames(exposition);
  return [...new Set(expressions.flatMap(metricNames))].filter((name) => !exposed.has(name)).sort();
};

/**
 * The Grafana dashboard and the Prometheus alert rules read only metrics that a running ncps exposes,
 * so renaming a metric in the code without them (or the reverse) fails here.
 */
describe('config/grafana dashboard and config/prometheus alerts', () => {
  const a = fakePath('dash-a', 30_000);
  const b = fakePath('dash-b', 50_000);
  let upstream: FakeUpstream;
  let server: RunningApp;
  let exposition: string;

  beforeAll(async () => {
    upstream = await FakeUpstream.start();
    for (const path of [a, b]) {
      upstream.serve(`/${path.hash}.narinfo`, path.narinfo);
      upstream.serve(path.narPath, path.nar);
    }
    server = await startApp({
      'prometheus-enabled': true,
      'cache-upstream-url': [upstream.url],
      'cache-upstream-allow-unsigned': [upstream.url],
      'cache-max-size': '60K',
    });
    // Traffic that fills the dashboard: misses (upstream, locks, downloads), hits, a 404, an eviction.
    for (const path of [a, b]) {
      expect((await fetch(`${server.url}/${path.hash}.narinfo`)).status).toBe(200);
      expect(Buffer.from(await (await fetch(`${server.url}${path.narPath}`)).arrayBuffer()).equals(path.nar)).toBe(true);
      expect((await fetch(`${server.url}/${path.hash}.narinfo`)).status).toBe(200);
    }
    expect((await fetch(`${server.url}/${'0'.repeat(32)}.narinfo`)).status).toBe(404);
    const deadline = Date.now() + 10_000;
    // The last NAR byte goes out before the commit to storage: evict once both NARs are stored.
    const inFlight = async () => /^ncps_nar_downloads_in_flight (\d+)$/m.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1];
    while ((await inFlight()) !== '0') {
      if (Date.now() > deadline) throw new Error('the NAR downloads did not finish');
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    let summary = await server.app.get(LruService).runOnce();
    // A NAR still being committed holds its lock: the LRU skips the round; try again.
    while (!summary.ran && Date.now() < deadline) summary = await server.app.get(LruService).runOnce();
    expect(summary.ran).toBe(true);
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    exposition = await res.text();
  });

  afterAll(async () => {
    await server?.close();
    await upstream?.stop();
  });

  it('the dashboard is importable JSON with a data source variable and an instance selector', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      templating: { list: { name: string; type: string }[] };
      panels: Panel[];
    };
    expect(dashboard.templating.list).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'datasource', type: 'datasource' }),
        expect.objectContaining({ name: 'instance', type: 'query' }),
      ]),
    );
    expect(JSON.stringify(dashboard.panels)).not.toMatch(/"uid":"(?!\$\{datasource\})/);
    const titles = dashboard.panels.map((p) => p.title).join('\n');
    const subjects = [
      ...['Request rate', 'Latency', 'Hit ratio', 'served vs fetched', 'in flight', 'Upstream latency'],
      ...['Lock acquisitions', 'Lock failures', 'Lock hold', 'LRU', '--cache-max-size', 'Bytes saved'],
      ...['Bytes served by source', 'Bytes fetched by upstream', 'Narinfo lookups by upstream', 'Negative-cache hits', 'Warming'],
    ];
    for (const subject of subjects) {
      expect(titles).toContain(subject);
    }
  });

  it('every metric the dashboard queries exists in /metrics', () => {
    const expressions = dashboardExpressions(readFileSync(DASHBOARD, 'utf8'));
    expect(expressions.length).toBeGreaterThan(20);
    expect(missingNames(expressions, exposition)).toEqual([]);
  });

  it('every metric the alert rules query exists in /metrics', () => {
    const expressions = alertExpressions(readFileSync(ALERTS, 'utf8'));
    expect(expressions).toHaveLength(5);
    expect(missingNames(expressions, exposition)).toEqual([]);
  });

  it('would fail for a renamed metric', () => {
    const renamed = readFileSync(DASHBOARD, 'utf8').replaceAll('ncps_fetched_bytes_total', 'ncps_upstream_bytes_total');
    expect(missingNames(dashboardExpressions(renamed), exposition)).toEqual(['ncps_upstream_bytes_total']);
    const dropped = exposition.replace(/^# TYPE ncps_lock_failures_total .*$/m, '');
    expect(missingNames(alertExpressions(readFileSync(ALERTS, 'utf8')), dropped)).toEqual(['ncps_lock_failures_total']);
  });

  it('the traffic shows up in the series the overview panels read', () => {
    const sample = (pattern: RegExp) => exposition.split('\n').find((line) => pattern.test(line));
    expect(sample(/^ncps_cache_requests_total\{kind="narinfo",result="hit"\} [1-9]/)).toBeDefined();
    expect(sample(/^ncps_fetched_bytes_total [1-9]/)).toBeDefined();
    expect(sample(/^ncps_cache_max_size_bytes 61440$/)).toBeDefined();
    expect(sample(/^ncps_lru_evicted_entries_total\{kind="nar"\} [1-9]/)).toBeDefined();
    expect(sample(/^ncps_upstream_request_duration_seconds_bucket\{/)).toBeDefined();
    // The per-upstream and bytes-saved panels: narinfo hits came from the cache and from the upstream.
    expect(sample(/^ncps_cache_served_bytes_total\{kind="narinfo",source="cache"\} [1-9]/)).toBeDefined();
    expect(sample(/^ncps_upstream_narinfo_lookups_total\{upstream="[^"]+",result="hit"\} 2$/)).toBeDefined();
    expect(sample(/^ncps_upstream_fetched_bytes_total\{upstream="[^"]+",kind="nar"\} 80000$/)).toBeDefined(); // a and b
  });

  it('the alert rules pass promtool check rules', () => {
    const promtool = spawnSync('promtool', ['check', 'rules', ALERTS], { encoding: 'utf8' });
    if (promtool.error && !process.env.CI) {
      // Outside CI promtool is optional (`apt-get install --no-install-recommends prometheus`); CI installs it.
      console.warn(`promtool not found: ${promtool.error.message}`);
      return;
    }
    expect(promtool.error).toBeUndefined();
    expect(`${promtool.stdout}${promtool.stderr}`).toContain('SUCCESS: 5 rules found');
    expect(promtool.status).toBe(0);
  });
});
