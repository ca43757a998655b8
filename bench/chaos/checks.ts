import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type Dockerode from 'dockerode';
import { NotFoundError, type OpenAI } from 'openai';
import pg from 'pg';
import { REQUEST_TIMEOUT_MS, type AckedFile } from './client-loop.js';
import { kindOf } from './tally.js';

export interface Check {
  name: string;
  passed: boolean;
  detail: string;
}

/** Every acknowledged Files API upload, downloaded again: same sha256, or it counts as lost. */
export async function checkAckedFiles(client: OpenAI, acked: AckedFile[]): Promise<Check> {
  const lost: string[] = [];
  const wrong: string[] = [];
  const unreadable: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < acked.length) {
      const file = acked[next++]!;
      for (let attempt = 1; ; attempt++) {
        try {
          const res = await client.files.content(file.id, {
            signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          });
          const got = createHash('sha256')
            .update(new Uint8Array(await res.arrayBuffer()))
            .digest('hex');
          if (got !== file.sha256) wrong.push(file.id);
          break;
        } catch (error) {
          if (error instanceof NotFoundError) {
            lost.push(file.id);
            break;
          }
          // The service should be settled now; a few tries rule out one bad moment.
          if (attempt >= 5) {
            unreadable.push(`${file.id} (${kindOf(error)})`);
            break;
          }
          await sleep(1000);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  const bad = [...lost, ...wrong, ...unreadable];
  return {
    name: 'zero lost files',
    passed: bad.length === 0,
    detail:
      `${acked.length} acknowledged uploads: ${acked.length - bad.length} intact, ` +
      `${lost.length} lost (404), ${wrong.length} wrong bytes, ${unreadable.length} unreadable` +
      (bad.length ? `; e.g. ${bad.slice(0, 5).join(', ')}` : ''),
  };
}

const LIVE = new Set(['creating', 'running', 'deleting']);

/** Docker and Postgres agree: no labelled sandbox without a live row, no running row without a running sandbox. */
export async function checkSandboxes(
  docker: Dockerode,
  databaseUrl: string,
  instance: string,
): Promise<{ checks: Check[]; rowsByStatus: Record<string, number> }> {
  const sandboxes = await docker.listContainers({
    all: true,
    filters: { label: [`org.berth.instance=${instance}`] },
  });
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  let rows: { id: string; status: string }[];
  try {
    rows = (await db.query<{ id: string; status: string }>('select id, status from containers'))
      .rows;
  } finally {
    await db.end();
  }
  const statusById = new Map(rows.map((r) => [r.id, r.status]));
  const sandboxById = new Map(
    sandboxes.map((s) => [s.Labels['org.berth.container-id'] ?? '', s] as const),
  );
  const orphans = sandboxes.filter((s) => {
    const status = statusById.get(s.Labels['org.berth.container-id'] ?? '');
    return !status || !LIVE.has(status);
  });
  const hollow = rows.filter(
    (r) => r.status === 'running' && sandboxById.get(r.id)?.State !== 'running',
  );
  const rowsByStatus: Record<string, number> = {};
  for (const r of rows) rowsByStatus[r.status] = (rowsByStatus[r.status] ?? 0) + 1;
  return {
    rowsByStatus,
    checks: [
      {
        name: 'zero orphaned sandboxes',
        passed: orphans.length === 0,
        detail:
          `${sandboxes.length} labelled sandboxes, ${orphans.length} without a live row` +
          (orphans.length
            ? `; e.g. ${orphans
                .slice(0, 5)
                .map(
                  (s) =>
                    `${s.Names[0]} (${s.State}, row ${statusById.get(s.Labels['org.berth.container-id'] ?? '') ?? 'none'})`,
                )
                .join(', ')}`
            : ''),
      },
      {
        name: 'zero rows without sandboxes',
        passed: hollow.length === 0,
        detail:
          `${rows.filter((r) => r.status === 'running').length} running rows, ${hollow.length} without a running sandbox` +
          (hollow.length
            ? `; e.g. ${hollow
                .slice(0, 5)
                .map((r) => `${r.id} (sandbox ${sandboxById.get(r.id)?.State ?? 'missing'})`)
                .join(', ')}`
            : ''),
      },
    ],
  };
}
