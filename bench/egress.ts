import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EgressProxy, Resolver, parseAllowlist, type EgressProxyOptions } from '@berth/egress';
import { percentile, type Row } from './harness.js';
import { BODY_BYTES, type Fetch, type Fetched } from './egress-peer.js';

const PEER = fileURLToPath(new URL('./egress-peer.ts', import.meta.url));

/** A child running bench/egress-peer.ts; resolves with its first message. */
async function peer(args: string[]): Promise<{ child: ChildProcess; first: unknown }> {
  const child = fork(PEER, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const first = await new Promise<unknown>((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`egress bench peer exited (${code})`)));
  });
  return { child, first };
}

export interface EgressRig {
  /** The scratch directory: the proxy's run dir, and room for the upstream's files. */
  dir: string;
  /** The upstream's loopback port. */
  port: number;
  proxy: EgressProxy;
  /** Attaches a sandbox allowed `hosts`; resolves with the path of its socket. */
  attach(
    id: string,
    hosts: string[],
    secrets?: Parameters<EgressProxy['attach']>[2],
  ): Promise<string>;
  /** p50 ms of each named fetch, made `runs` times in turn by the same client process. */
  p50s<K extends string>(runs: number, fetches: Record<K, Fetch>): Promise<Record<K, number>>;
}

/**
 * A local upstream and a client, each in a process of its own, and the proxy in this one (as in
 * Berth): a direct fetch and a proxied one differ by the proxy's hop alone. `upstream` gives the
 * upstream's arguments once the directory exists; every name in `hosts` resolves to it.
 */
export async function withEgressRig<T>(
  setup: {
    upstream: (dir: string) => string[];
    hosts: string[];
    proxy?: (dir: string) => Partial<EgressProxyOptions>;
  },
  use: (rig: EgressRig) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-egress-bench-'));
  const children: ChildProcess[] = [];
  const proxies: EgressProxy[] = [];
  try {
    const upstream = await peer(['upstream', ...setup.upstream(dir)]);
    children.push(upstream.child);
    const port = upstream.first as number;
    const client = await peer(['client']);
    children.push(client.child);
    const proxy = new EgressProxy({
      runDir: dir,
      resolver: new Resolver({
        testUpstreams: new Map(setup.hosts.map((h) => [h, { host: '127.0.0.1', port }])),
      }),
      ...setup.proxy?.(dir),
    });
    proxies.push(proxy);
    const fetchOnce = (f: Fetch) =>
      new Promise<number>((resolve, reject) => {
        client.child.once('message', (m: Fetched | { error: string }) => {
          if ('error' in m) reject(new Error(m.error));
          else if (m.bytes !== BODY_BYTES) reject(new Error(`${f.kind} fetched ${m.bytes} bytes`));
          else resolve(m.ms);
        });
        client.child.send(f);
      });
    return await use({
      dir,
      port,
      proxy,
      async attach(id, hosts, secrets) {
        const parsed = parseAllowlist(hosts, { maxEntries: hosts.length });
        if (!parsed.ok) throw new Error(parsed.message);
        await proxy.attach(id, parsed.rules, secrets);
        return join(proxy.hostDir(id), 'egress.sock');
      },
      async p50s(runs, fetches) {
        const names = Object.keys(fetches) as (keyof typeof fetches)[];
        const samples = new Map(names.map((n) => [n, [] as number[]]));
        for (let i = 0; i < runs; i++)
          for (const n of names) samples.get(n)!.push(await fetchOnce(fetches[n]));
        return Object.fromEntries(names.map((n) => [n, percentile(samples.get(n)!, 50)])) as Record<
          keyof typeof fetches,
          number
        >;
      },
    });
  } finally {
    for (const p of proxies) await p.close();
    for (const c of children) c.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Rounds of a loopback egress part, each with its own upstream, client and proxy, and fetches per
 * kind in each. Within one set of processes the p50s hold still, but from one set to the next they
 * do not: five back-to-back runs of 100 fetches per kind gave 1.18-1.35x for plain HTTP on the
 * 2-core bench host (where the scheduler puts three busy processes on two cores decides it), and
 * over 15 fetches 0.75-1.31x. A ratio is therefore the median of the rounds' ratios, as the
 * transfer bench takes its own (bench/files.ts).
 */
const EGRESS_ROUNDS = 5;
const EGRESS_RUNS = 40;

/**
 * Runs `fetches` EGRESS_RUNS times in turn in each of EGRESS_ROUNDS rigs; the p50 of each kind
 * per round.
 */
export async function egressRounds<K extends string>(
  setup: Parameters<typeof withEgressRig>[0],
  fetches: (rig: EgressRig) => Promise<Record<K, Fetch>>,
): Promise<Record<K, number>[]> {
  const rounds: Record<K, number>[] = [];
  for (let i = 0; i < EGRESS_ROUNDS; i++)
    rounds.push(
      await withEgressRig(setup, async (rig) => rig.p50s(EGRESS_RUNS, await fetches(rig))),
    );
  return rounds;
}

const median = (xs: number[]) => percentile(xs, 50);

/** A row of the median over rounds of `of(round)`, the rounds' own values in its note. */
export function roundsRow<R>(
  name: string,
  rounds: R[],
  of: (round: R) => number,
  unit: 'ms' | 'x',
): Row {
  const values = rounds.map(of);
  const shown = values.map((v) => v.toFixed(unit === 'x' ? 2 : 1)).join(', ');
  return { name, value: median(values), unit, note: `median of ${rounds.length} rounds: ${shown}` };
}

/** 10 MB from a local upstream through the proxy's socket, beside the same fetch made directly. */
export async function benchEgress(): Promise<Row[]> {
  const rounds = await egressRounds(
    { upstream: () => ['http'], hosts: ['bench.test:80'] },
    async (rig) => {
      const socketPath = await rig.attach('cntr_' + 'b'.repeat(48), ['bench.test']);
      return {
        direct: { kind: 'http', options: { host: '127.0.0.1', port: rig.port, path: '/' } },
        proxied: {
          kind: 'http',
          options: { socketPath, path: 'http://bench.test/', headers: { host: 'bench.test' } },
        },
      };
    },
  );
  return [
    roundsRow('egress 10 MB p50: direct from the host', rounds, (r) => r.direct, 'ms'),
    roundsRow('egress 10 MB p50: through the proxy socket', rounds, (r) => r.proxied, 'ms'),
    roundsRow('egress 10 MB p50: ratio proxy/direct', rounds, (r) => r.proxied / r.direct, 'x'),
  ];
}
