import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EgressProxy, Resolver, parseAllowlist } from '@berth/egress';
import { percentile, time, type Row } from './harness.js';

const BODY = Buffer.alloc(10 * 1024 * 1024, 'x');

function get(options: http.RequestOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(options, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => resolve(n));
      })
      .on('error', reject);
  });
}

/** 10 MB from a local upstream through the proxy's socket, beside the same fetch made directly. */
export async function benchEgress(runs = 15): Promise<Row[]> {
  const upstream = http.createServer((_req, res) => res.end(BODY));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as AddressInfo).port;
  const dir = mkdtempSync(join(tmpdir(), 'berth-egress-bench-'));
  const proxy = new EgressProxy({
    runDir: dir,
    resolver: new Resolver({
      testUpstreams: new Map([['bench.test:80', { host: '127.0.0.1', port }]]),
    }),
  });
  const id = 'cntr_' + 'b'.repeat(48);
  const parsed = parseAllowlist(['bench.test'], { maxEntries: 1 });
  if (!parsed.ok) throw new Error(parsed.message);
  await proxy.attach(id, parsed.rules);
  const socketPath = join(proxy.hostDir(id), 'egress.sock');
  try {
    const direct: number[] = [];
    const proxied: number[] = [];
    for (let i = 0; i < runs; i++) {
      direct.push((await time(() => get({ host: '127.0.0.1', port, path: '/' })))[0]);
      const [ms, n] = await time(() =>
        get({ socketPath, path: 'http://bench.test/', headers: { host: 'bench.test' } }),
      );
      if (n !== BODY.length) throw new Error(`proxy returned ${n} bytes`);
      proxied.push(ms);
    }
    const d = percentile(direct, 50);
    const p = percentile(proxied, 50);
    return [
      { name: 'egress 10 MB p50: direct from the host', value: d, unit: 'ms' },
      { name: 'egress 10 MB p50: through the proxy socket', value: p, unit: 'ms' },
      { name: 'egress 10 MB p50: ratio proxy/direct', value: p / d, unit: 'x' },
    ];
  } finally {
    await proxy.detach(id);
    await proxy.close();
    upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
