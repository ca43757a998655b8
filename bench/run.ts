/**
 * `pnpm bench`: measures what the issues ask for and prints one table. Numbers go into the
 * issue notes; no test asserts on time.
 */
import { benchCreate, benchList, benchPoolCreate, poolsFull } from './containers.js';
import { benchLoad } from './load.js';
import { benchEgress } from './egress.js';
import { benchEgressTls } from './egress-tls.js';
import { benchSandboxEgress } from './sandbox-egress.js';
import { benchExec } from './exec.js';
import { benchFiles } from './files.js';
import { benchReaper } from './reaper.js';
import { benchArchive, benchSessions } from './sessions.js';
import { startBenchBerth, type Row } from './harness.js';
import { benchAdmin } from './admin.js';
import { tuneHeapGrowth } from '../services/api/src/heap.js';

process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
// The egress parts run the proxy in this process, as the service runs it in its own: with the
// service's heap settings (services/api/src/heap.ts), not V8's default headroom.
tuneHeapGrowth();

async function run(): Promise<void> {
  const rows: Row[] = [];
  // The API alone: the reaper bench runs its own reapers on the same database.
  const berth = await startBenchBerth({ BERTH_ROLE: 'api' });
  // Ctrl-C mid-run: the warm pool's sandboxes and the bench's containers go with the bench.
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => {
      console.error(`bench: ${signal}, removing this run's sandboxes`);
      void berth.close().finally(() => process.exit(130));
    });
  // `pnpm bench -- --only create,pool,exec,files,load --load-seconds 60`: the parts to run.
  const arg = (flag: string) => {
    const at = process.argv.indexOf(flag);
    return at > 0 ? process.argv[at + 1] : undefined;
  };
  const only = new Set((arg('--only') ?? '').split(',').filter(Boolean));
  const parts: [string, () => Promise<Row[]>][] = [
    ['create', () => benchCreate(berth)],
    ['pool', () => benchPoolCreate(berth)],
    ['pool-allowlist', () => benchPoolCreate(berth, 30, 'allowlist')],
    ['list', () => benchList(berth)],
    ['exec', () => benchExec(berth)],
    ['files', () => benchFiles(berth)],
    ['reaper', () => benchReaper(berth)],
    ['sessions', () => benchSessions(berth)],
    ['archive', () => benchArchive(berth)],
    ['egress', () => benchEgress()],
    ['admin', () => benchAdmin()],
    ['egress-tls', () => benchEgressTls()],
    ['sandbox-egress', () => benchSandboxEgress()],
    ['load', () => benchLoad(berth, { seconds: Number(arg('--load-seconds') ?? 60) })],
  ];
  try {
    for (const [name, part] of parts) {
      if (only.size > 0 && !only.has(name)) continue;
      // Both pools full first: no filler's Docker create runs beside this part's timings.
      await poolsFull(berth);
      rows.push(...(await part()));
    }
  } finally {
    await berth.close();
  }
  const width = Math.max(...rows.map((r) => r.name.length));
  console.log(`${'measurement'.padEnd(width)}  ${'value'.padStart(10)}  unit`);
  for (const r of rows) {
    const value = r.unit === 'x' ? r.value.toFixed(2) : r.value.toFixed(1);
    console.log(
      `${r.name.padEnd(width)}  ${value.padStart(10)}  ${r.unit}${r.note ? `  (${r.note})` : ''}`,
    );
  }
}

run().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
