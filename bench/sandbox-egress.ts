import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { dockerExec, testDocker } from '@berth/testkit';
import { percentile, startBenchBerth, type Row } from './harness.js';

const run = promisify(execFile);
const BYTES = 10 * 1024 * 1024;

/** A 10 MB answer from a process of its own on loopback; resolves with it and its port. */
async function upstream(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const b = Buffer.alloc(${BYTES}, 97);
       require('http').createServer((q, r) => { r.writeHead(200, { 'content-length': b.length }); r.end(b); })
         .listen(0, '127.0.0.1', function () { console.log(this.address().port); });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`upstream exited (${code})`)));
  });
  return { child, port };
}

/** curl's own `time_total` in ms for one fetch of `url` (the exec or process start is not in it). */
const CURL = ['curl', '-sS', '-o', '/dev/null', '-w', '%{size_download} %{time_total}'];
function curlMs(out: string): number {
  const [size, seconds] = out.trim().split(' ');
  if (Number(size) !== BYTES) throw new Error(`curl fetched ${size} bytes, not ${BYTES}`);
  return Number(seconds) * 1000;
}

/**
 * The egress path a sandbox's code takes: curl inside an allowlist sandbox, through its proxy
 * environment, the in-sandbox forwarder (socat, loopback TCP to the mounted socket) and the proxy,
 * against the same curl on the host fetching the same upstream directly. A Berth of its own, whose
 * test switch maps the allowed name to the loopback upstream.
 */
export async function benchSandboxEgress(runs = 15): Promise<Row[]> {
  const up = await upstream();
  const berth = await startBenchBerth({
    BERTH_TEST_MODE: '1',
    BERTH_EGRESS_TEST_UPSTREAMS: `bench.test:80=127.0.0.1:${up.port}`,
    BERTH_POOL_SIZES: '1g=0',
  });
  try {
    const res = await berth.api('/v1/containers', {
      method: 'POST',
      body: JSON.stringify({
        name: 'bench-sandbox-egress',
        network_policy: { type: 'allowlist', allowed_domains: ['bench.test'] },
      }),
    });
    if (res.status !== 200) throw new Error(`create failed: ${await res.text()}`);
    const { id } = (await res.json()) as { id: string };
    // The sandbox's own key (a warm-pool one keeps its slot's) and its uid, as the curl runs.
    const key = (await berth.sandboxOf(id)).replace(/^berth-/, '');
    const user = (await testDocker.docker.getContainer(`berth-${key}`).inspect()).Config.User;
    const inSandbox = async (): Promise<number> => {
      const r = await dockerExec(key, [...CURL, 'http://bench.test/'], user);
      if (r.exitCode !== 0) throw new Error(`curl in the sandbox: ${r.stderr}`);
      return curlMs(r.stdout);
    };
    const onHost = async (): Promise<number> =>
      curlMs((await run(CURL[0]!, [...CURL.slice(1), `http://127.0.0.1:${up.port}/`])).stdout);
    await inSandbox(); // the first connection warms the forwarder
    const sandboxed: number[] = [];
    const direct: number[] = [];
    for (let i = 0; i < runs; i++) {
      sandboxed.push(await inSandbox());
      direct.push(await onHost());
    }
    const s = percentile(sandboxed, 50);
    const d = percentile(direct, 50);
    return [
      { name: 'egress 10 MB from a sandbox (curl, forwarder + proxy) p50', value: s, unit: 'ms' },
      { name: 'egress 10 MB direct on the host (curl) p50', value: d, unit: 'ms' },
      { name: 'egress 10 MB from a sandbox: ratio', value: s / d, unit: 'x' },
    ];
  } finally {
    await berth.close();
    up.child.kill();
  }
}
