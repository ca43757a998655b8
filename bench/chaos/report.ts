import { percentile } from '../harness.js';
import type { BerthProcess } from './berth-process.js';
import type { Check } from './checks.js';
import type { LoopResults } from './client-loop.js';
import type { Tally } from './tally.js';

export interface Disruption {
  name: string;
  /** Since the clients started. */
  atMs: number;
  /** How long the action itself took (stop and start). */
  tookMs: number;
  /** From the action's start until /readyz answered 200 again; null if it never did. */
  readyAfterMs: number | null;
}

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The final table: disruptions, requests per operation, errors by kind, service log, checks. */
export function printReport(r: {
  minutes: number;
  clients: number;
  durationMs: number;
  tally: Tally;
  results: LoopResults;
  disruptions: Disruption[];
  checks: Check[];
  rowsByStatus: Record<string, number>;
  berth: BerthProcess;
}): void {
  const { tally, results } = r;
  console.log(
    `\nchaos run: ${s(r.durationMs)}, ${r.clients} clients, ${tally.requests} requests, ` +
      `${results.iterations} iterations (${results.completed} clean), ` +
      `${results.containersCreated} containers created, ${results.containersDeleted} deleted, ` +
      `${results.acked.length} Files API uploads acknowledged`,
  );

  console.log('\ndisruption          at         took      ready again after');
  for (const d of r.disruptions)
    console.log(
      `${d.name.padEnd(18)}  ${s(d.atMs).padStart(8)}  ${s(d.tookMs).padStart(8)}  ${
        d.readyAfterMs === null ? 'never' : s(d.readyAfterMs).padStart(8)
      }`,
    );

  console.log(
    `\n${'operation'.padEnd(26)} ${'requests'.padStart(9)} ${'ok'.padStart(7)} ${'errors'.padStart(7)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)}`,
  );
  for (const [op, st] of r.tally.ops)
    console.log(
      `${op.padEnd(26)} ${String(st.requests).padStart(9)} ${String(st.ok).padStart(7)} ${String(
        st.requests - st.ok,
      ).padStart(7)} ${percentile(st.latenciesMs, 50).toFixed(0).padStart(8)} ${percentile(
        st.latenciesMs,
        99,
      )
        .toFixed(0)
        .padStart(8)}`,
    );

  console.log('\nerrors by kind (operation, kind, count)');
  let any = false;
  for (const [op, st] of r.tally.ops)
    for (const [kind, n] of [...st.errors].sort((a, b) => b[1] - a[1])) {
      any = true;
      console.log(`  ${op.padEnd(26)} ${kind.padEnd(40)} ${n}`);
    }
  if (!any) console.log('  none');

  console.log('\nservice log (level ≥ warn, by message) and restarts');
  const byMsg = new Map<string, number>();
  for (const l of r.berth.logLines()) {
    if (l.level < 40) continue;
    const detail = (l.err?.message ?? l.detail ?? '')
      .replace(/(cntr|cfile)_[0-9a-f]+/g, '$1_*')
      .replace(/file-[0-9A-Za-z]+/g, 'file-*')
      .slice(0, 120);
    const key = `${l.level >= 50 ? 'ERROR' : 'warn '} ${l.msg}${l.status ? ` ${l.status}` : ''}${detail ? `: ${detail}` : ''}`;
    byMsg.set(key, (byMsg.get(key) ?? 0) + 1);
  }
  for (const [key, n] of [...byMsg].sort((a, b) => b[1] - a[1]).slice(0, 25))
    console.log(`  ${String(n).padStart(5)}  ${key}`);
  console.log(
    `  starts: ${r.berth.starts.length}; exits nobody asked for: ${r.berth.unplannedExits.length}` +
      (r.berth.unplannedExits.length ? ` (${r.berth.unplannedExits.join('; ')})` : ''),
  );
  console.log(
    `  rows after the final reconcile: ${
      Object.entries(r.rowsByStatus)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none'
    }`,
  );

  console.log('\nchecks');
  for (const c of r.checks) console.log(`  ${c.passed ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`);
  const passed = r.checks.filter((c) => c.passed).length;
  console.log(`\nchaos: ${passed} passed, ${r.checks.length - passed} failed`);
}
