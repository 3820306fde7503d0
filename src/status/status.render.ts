import { Interval, sumIntervals } from './status.history';

export interface StatusDownload {
  key: string;
  written: number;
  expected?: number;
}

export interface StatusCheck {
  name: string;
  status: string;
  /** Extra non-secret facts the check reported (e.g. backend, mode). */
  details: Record<string, string>;
}

export interface LastLruRun {
  at: Date;
  result: string;
  evictedBytes: number;
  evictedEntries: number;
}

/** Everything the status page shows; built by StatusService, rendered by renderStatusPage. */
export interface StatusView {
  version: string;
  now: Date;
  uptimeSeconds: number;
  /** Non-secret configuration facts, in display order. */
  config: [string, string][];
  intervals: Interval[];
  storedBytes?: number;
  maxSizeBytes?: number;
  downloads: StatusDownload[];
  checks: StatusCheck[];
  lastLru?: LastLruRun;
  refreshSeconds: number;
  /** Bytes served are counted only with --prometheus-enabled (the counting hook costs every request). */
  servedCounted: boolean;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 → "1.5 KiB"; whole bytes below 1 KiB. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = d ? [`${d}d`, `${h}h`, `${m}m`] : h ? [`${h}h`, `${m}m`] : [`${m}m`, `${s % 60}s`];
  return parts.join(' ');
}

/** Hit ratio as a percentage with one decimal, or "–" when there were no lookups. */
export function formatRatio(hits: number, misses: number): string {
  const total = hits + misses;
  return total === 0 ? '–' : `${((100 * hits) / total).toFixed(1)}%`;
}

const W = 360;
const H = 80;

/**
 * A small inline bar chart of one series per interval (a stacked second series optional), with a
 * title for screen readers. Values are numbers only: nothing dynamic reaches the SVG unescaped.
 */
export function barChart(title: string, series: { values: number[]; colour: string; label: string }[]): string {
  const n = Math.max(1, series[0]?.values.length ?? 0);
  const totals = Array.from({ length: n }, (_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const max = Math.max(1, ...totals);
  const bar = W / 61;
  const rects: string[] = [];
  // Right-aligned: the newest interval is at the right edge, an hour ago at the left.
  const offset = W - n * bar;
  for (let i = 0; i < n; i++) {
    let y = H;
    for (const s of series) {
      const v = s.values[i] ?? 0;
      if (v <= 0) continue;
      const h = Math.max(1, (v / max) * (H - 2));
      y -= h;
      rects.push(
        `<rect x="${(offset + i * bar).toFixed(1)}" y="${y.toFixed(1)}" width="${(bar * 0.8).toFixed(1)}" height="${h.toFixed(1)}" fill="${s.colour}"><title>${escapeHtml(s.label)}: ${v}</title></rect>`,
      );
    }
  }
  return (
    `<svg class="chart" role="img" aria-label="${escapeHtml(title)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg">` +
    `<title>${escapeHtml(title)}</title><rect x="0" y="0" width="${W}" height="${H}" fill="#f6f8fa"/>${rects.join('')}</svg>`
  );
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1f2328;background:#fff}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.4rem 0 .4rem;border-bottom:1px solid #d0d7de}
.muted{color:#656d76}table{border-collapse:collapse}td,th{padding:.15rem .8rem .15rem 0;text-align:left;vertical-align:top}
.figure{font-size:1.6rem;font-weight:600}.grid{display:flex;flex-wrap:wrap;gap:1.5rem}
.card{border:1px solid #d0d7de;border-radius:6px;padding:.6rem .8rem}.ok{color:#1a7f37}.bad{color:#cf222e}
progress{width:12rem}.legend span{display:inline-block;width:.7rem;height:.7rem;margin:0 .2rem 0 .6rem}
`;

const row = (k: string, v: string) => `<tr><th>${escapeHtml(k)}</th><td>${v}</td></tr>`;

/** The whole status page: self-refreshing, inline CSS and SVG only, every dynamic value escaped. */
export function renderStatusPage(view: StatusView): string {
  const totals = sumIntervals(view.intervals);
  const hour = { hits: totals.hits, misses: totals.misses, served: totals.servedBytes, fetched: totals.fetchedBytes };
  const ratio = formatRatio(hour.hits, hour.misses);
  const stored =
    view.storedBytes === undefined
      ? 'unknown'
      : view.maxSizeBytes
        ? `${formatBytes(view.storedBytes)} of ${formatBytes(view.maxSizeBytes)} (${((100 * view.storedBytes) / view.maxSizeBytes).toFixed(1)}%)`
        : `${formatBytes(view.storedBytes)} (no limit)`;
  const storedBar =
    view.storedBytes !== undefined && view.maxSizeBytes
      ? `<br><progress max="${view.maxSizeBytes}" value="${Math.min(view.storedBytes, view.maxSizeBytes)}"></progress>`
      : '';

  const downloads = view.downloads.length
    ? `<table><tr><th>NAR</th><th>received</th><th>progress</th></tr>${view.downloads
        .map((d) => {
          const pct = d.expected ? ` (${((100 * d.written) / d.expected).toFixed(0)}%)` : '';
          const bar = d.expected
            ? `<progress max="${d.expected}" value="${Math.min(d.written, d.expected)}"></progress>`
            : '<progress></progress>';
          return `<tr><td><code>${escapeHtml(d.key)}</code></td><td>${escapeHtml(formatBytes(d.written))}${d.expected ? ` of ${escapeHtml(formatBytes(d.expected))}` : ''}${pct}</td><td>${bar}</td></tr>`;
        })
        .join('')}</table>`
    : '<p class="muted">No download in progress.</p>';

  const checks = view.checks.length
    ? `<table>${view.checks
        .map((c) => {
          const cls = c.status === 'up' ? 'ok' : 'bad';
          const facts = Object.entries(c.details)
            .map(([k, v]) => `${escapeHtml(k)}: ${escapeHtml(v)}`)
            .join(', ');
          return `<tr><th>${escapeHtml(c.name)}</th><td class="${cls}">${escapeHtml(c.status)}</td><td class="muted">${facts}</td></tr>`;
        })
        .join('')}</table>`
    : '<p class="muted">No health report.</p>';

  const lru = view.lastLru
    ? `${escapeHtml(view.lastLru.at.toISOString())}: ${escapeHtml(view.lastLru.result)}, evicted ${view.lastLru.evictedEntries} narinfos, ${escapeHtml(formatBytes(view.lastLru.evictedBytes))} of NARs`
    : 'not run since start';

  const hits = view.intervals.map((i) => i.hits);
  const misses = view.intervals.map((i) => i.misses);
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="${view.refreshSeconds}">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>ncps status</title><style>${CSS}</style></head>
<body>
<h1>ncps status</h1>
<p class="muted">version <span id="version">${escapeHtml(view.version)}</span> · up <span id="uptime">${escapeHtml(formatDuration(view.uptimeSeconds))}</span> · ${escapeHtml(view.now.toISOString())} · refreshes every ${view.refreshSeconds}s</p>
<h2>Last hour</h2>
<div class="grid">
<div class="card"><div class="muted">hit ratio</div><div class="figure" id="hit-ratio">${escapeHtml(ratio)}</div><div class="muted" id="lookups">${hour.hits} hits, ${hour.misses} misses</div>
${barChart('lookups per minute: hits and misses', [
  { values: hits, colour: '#1a7f37', label: 'hits' },
  { values: misses, colour: '#cf222e', label: 'misses' },
])}
<div class="legend muted"><span style="background:#1a7f37"></span>hits<span style="background:#cf222e"></span>misses</div></div>
<div class="card"><div class="muted">bytes served</div>${view.servedCounted ? `<div class="figure" id="served">${escapeHtml(formatBytes(hour.served))}</div><div class="muted">${hour.served} bytes</div>` : '<div class="figure" id="served">–</div><div class="muted">counted with --prometheus-enabled</div>'}
${barChart('bytes served per minute', [{ values: view.intervals.map((i) => i.servedBytes), colour: '#0969da', label: 'served' }])}</div>
<div class="card"><div class="muted">bytes fetched from upstream</div><div class="figure" id="fetched">${escapeHtml(formatBytes(hour.fetched))}</div><div class="muted">${hour.fetched} bytes</div>
${barChart('bytes fetched per minute', [{ values: view.intervals.map((i) => i.fetchedBytes), colour: '#8250df', label: 'fetched' }])}</div>
</div>
<h2>Storage</h2>
<p>stored <span id="stored">${escapeHtml(stored)}</span>${storedBar}</p>
<p>last LRU run: <span id="lru">${lru}</span></p>
<h2>Downloads in progress</h2>
${downloads}
<h2>Health</h2>
${checks}
<h2>Configuration</h2>
<table>${view.config.map(([k, v]) => row(k, escapeHtml(v))).join('')}</table>
</body></html>
`;
}
