/**
 * `pnpm bench`: measures what the issues ask for and prints one table. Numbers go into the
 * issue notes; no test asserts on time.
 */
import { benchCreate, benchList, benchPoolCreate } from './containers.js';
import { benchLoad } from './load.js';
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
  // `pnpm bench -- --only create,pool,exec,files,load --load-seconds 60`: the parts to run.
  const arg = (flag: string) => {
    const at = process.argv.indexOf(flag);
    return at > 0 ? process.argv[at + 1] : undefined;
  };
  const only = new Set((arg('--only') ?? '').split(',').filter(Boolean));
  const want = (part: string) => only.size === 0 || only.has(part);
  try {
    if (want('create')) rows.push(...(await benchCreate(berth)));
    if (want('pool')) rows.push(...(await benchPoolCreate(berth)));
    if (want('pool-allowlist')) rows.push(...(await benchPoolCreate(berth, 30, 'allowlist')));
    if (want('list')) rows.push(...(await benchList(berth)));
    if (want('exec')) rows.push(...(await benchExec(berth)));
    if (want('files')) rows.push(...(await benchFiles(berth)));
    if (want('reaper')) rows.push(...(await benchReaper(berth)));
    if (want('sessions')) rows.push(...(await benchSessions(berth)));
    if (want('archive')) rows.push(...(await benchArchive(berth)));
    if (want('egress')) rows.push(...(await benchEgress()));
    if (want('admin')) rows.push(...(await benchAdmin()));
    if (want('egress-tls')) rows.push(...(await benchEgressTls()));
    if (want('load'))
      rows.push(...(await benchLoad(berth, { seconds: Number(arg('--load-seconds') ?? 60) })));
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
