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
 * Fetches per kind in the loopback egress parts. A 10 MB loopback fetch takes ~10 ms and its time
 * moves with whatever else the two cores do: over 15 samples the p50 ratio ranged 0.75-1.31x in
 * five back-to-back sets on the 2-core bench host, and over 100 it ranged 1.18-1.24x.
 */
export const EGRESS_RUNS = 100;

/** 10 MB from a local upstream through the proxy's socket, beside the same fetch made directly. */
export async function benchEgress(runs = EGRESS_RUNS): Promise<Row[]> {
  return withEgressRig({ upstream: () => ['http'], hosts: ['bench.test:80'] }, async (rig) => {
    const socketPath = await rig.attach('cntr_' + 'b'.repeat(48), ['bench.test']);
    const p = await rig.p50s(runs, {
      direct: { kind: 'http', options: { host: '127.0.0.1', port: rig.port, path: '/' } },
      proxied: {
        kind: 'http',
        options: { socketPath, path: 'http://bench.test/', headers: { host: 'bench.test' } },
      },
    });
    return [
      { name: 'egress 10 MB p50: direct from the host', value: p.direct, unit: 'ms' },
      { name: 'egress 10 MB p50: through the proxy socket', value: p.proxied, unit: 'ms' },
      { name: 'egress 10 MB p50: ratio proxy/direct', value: p.proxied / p.direct, unit: 'x' },
    ];
  });
}
