/** One sample of a Prometheus text exposition: `name{label="value",...} 12.5`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A scrape of /metrics, queried by metric name and (a subset of) labels. */
export class Scrape {
  private constructor(readonly samples: readonly Sample[]) {}

  static parse(text: string): Scrape {
    const samples: Sample[] = [];
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) throw new Error(`not a Prometheus sample: ${line}`);
      const labels: Record<string, string> = {};
      for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
      samples.push({ name: match[1], labels, value: Number(match[3]) });
    }
    return new Scrape(samples);
  }

  static async of(url: string): Promise<Scrape> {
    const res = await fetch(`${url}/metrics`);
    if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
    return Scrape.parse(await res.text());
  }

  /** Samples of `name` whose labels include `labels`. */
  series(name: string, labels: Record<string, string> = {}): Sample[] {
    return this.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  }

  /** Sum of the matching samples; undefined when there is none (a series that does not exist). */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const found = this.series(name, labels);
    return found.length === 0 ? undefined : found.reduce((sum, s) => sum + s.value, 0);
  }

  /** Metric family names (histograms once, without their _bucket/_sum/_count suffixes). */
  families(prefix: string): string[] {
    const names = this.samples.map((s) => s.name.replace(/_(bucket|sum|count)$/, '')).filter((n) => n.startsWith(prefix));
    return [...new Set(names)].sort();
  }
}
