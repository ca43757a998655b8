/**
 * `pnpm bench`: measures what the issues ask for and prints one table. Numbers go into the
 * issue notes; no test asserts on time.
 */
import { benchCreate, benchList } from './containers.js';
import { benchEgress } from './egress.js';
import { benchEgressTls } from './egress-tls.js';
import { benchExec } from './exec.js';
import { benchFiles } from './files.js';
import { benchReaper } from './reaper.js';
import { benchArchive, benchSessions } from './sessions.js';
import { startBenchBerth, type Row } from './harness.js';
import { benchAdmin } from './admin.js';

process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';

async function run(): Promise<void> {
  const rows: Row[] = [];
  // The API alone: the reaper bench runs its own reapers on the same database.
  const berth = await startBenchBerth({ BERTH_ROLE: 'api' });
  try {
    rows.push(...(await benchCreate(berth)));
    rows.push(...(await benchList(berth)));
    rows.push(...(await benchExec(berth)));
    rows.push(...(await benchFiles(berth)));
    rows.push(...(await benchSessions(berth)));
    rows.push(...(await benchArchive(berth)));
    rows.push(...(await benchReaper(berth)));
    rows.push(...(await benchEgress()));
    rows.push(...(await benchAdmin()));
    rows.push(...(await benchEgressTls()));
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
