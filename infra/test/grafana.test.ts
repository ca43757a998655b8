import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createPool } from '@berth/db';
import { loadConfig } from '../../services/api/src/config.js';
import { Metrics } from '../../services/api/src/metrics.js';
import { createWarmPool } from '../../services/api/src/pool.js';

const dashboard = JSON.parse(
  readFileSync(new URL('../grafana/berth-dashboard.json', import.meta.url), 'utf8'),
) as { panels: { title: string; targets: { expr: string }[] }[] };

/** Every series name /metrics can expose, from its `# TYPE` lines (histograms' derived series too). */
async function exported(): Promise<Map<string, string[]>> {
  const metrics = new Metrics();
  // The warm pool registers its gauges beside the service's; its store is never reached here
  // (nothing answers at that address, and a scrape reads an empty pool).
  const db = createPool('postgres://berth:berth@127.0.0.1:1/none', { max: 1 });
  createWarmPool(
    loadConfig({ NODE_ENV: 'test', DATABASE_URL: 'postgres://127.0.0.1:1/none' }),
    db,
    {} as never,
    metrics,
    { warn: () => {} } as never,
  );
  const text = await metrics.registry.metrics();
  await db.end();
  const labels = new Map(
    (await metrics.registry.getMetricsAsJSON()).map((m) => [
      m.name,
      [...new Set(m.values.flatMap((v) => Object.keys(v.labels)))],
    ]),
  );
  for (const m of metrics.registry.getMetricsAsArray()) {
    const names = (m as unknown as { labelNames?: string[] }).labelNames ?? [];
    labels.set(m.name, [...new Set([...(labels.get(m.name) ?? []), ...names])]);
  }
  const series = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const match = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (!match) continue;
    const [, name, type] = match as unknown as [string, string, string];
    const own = labels.get(name) ?? [];
    series.set(name, own);
    if (type === 'histogram' || type === 'summary') {
      series.set(`${name}_bucket`, [...own, 'le']);
      series.set(`${name}_count`, own);
      series.set(`${name}_sum`, own);
    }
  }
  return series;
}

describe('infra/grafana/berth-dashboard.json', () => {
  it('queries only series /metrics exports, grouped by labels they carry', async () => {
    const series = await exported();
    const problems: string[] = [];
    let queried = 0;
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets) {
        const names = expr.match(/\bberth_[a-z0-9_]+/g) ?? [];
        if (names.length === 0) problems.push(`${panel.title}: no berth_ series in ${expr}`);
        for (const name of names) {
          queried += 1;
          if (!series.has(name)) problems.push(`${panel.title}: ${name} is not exported`);
        }
        const carried = new Set(names.flatMap((n) => series.get(n) ?? []));
        for (const by of expr.matchAll(/\bby \(([^)]*)\)/g))
          for (const label of by[1]!.split(',').map((l) => l.trim()))
            if (!carried.has(label)) problems.push(`${panel.title}: no series carries '${label}'`);
      }
    }
    expect(problems).toEqual([]);
    expect(queried).toBeGreaterThan(20);
  });

  it('covers every berth_ metric of the service at least once', async () => {
    const used = JSON.stringify(dashboard);
    const own = [...(await exported()).keys()].filter(
      (n) =>
        !/^berth_(process|nodejs)_/.test(n) &&
        !/_(bucket|count|sum)$/.test(n) &&
        !n.endsWith('_created'),
    );
    expect(own.filter((n) => !used.includes(n))).toEqual([]);
  });
});
