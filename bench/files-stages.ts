/**
 * Each stage of a 200 MB container-file transfer alone, to find which one costs: HTTP alone,
 * multipart parsing, the exec stream, the helper inside the sandbox. Standalone:
 * `TESTCONTAINERS_RYUK_DISABLED=true npx tsx --conditions=development bench/files-stages.ts`.
 */
import { fork } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { readdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { sendFile, singleFileUpload } from '../services/api/src/http/uploads.js';
import { aSandboxSpec, dockerExec, labelledRuntime, testDocker } from '@berth/testkit';
import { DockerSandboxFiles, startExec } from '@berth/sandbox-docker';
import type { ClientReply, ClientRequest } from './files-client.js';

const SIZE = 200 * 1024 * 1024;
const CHUNK = randomBytes(1024 * 1024);
const ROUNDS = Number(process.env.ROUNDS ?? 3);

function source(): Readable {
  let sent = 0;
  return new Readable({
    highWaterMark: 1024 * 1024,
    read() {
      if (sent >= SIZE) return void this.push(null);
      const n = Math.min(CHUNK.length, SIZE - sent);
      sent += n;
      this.push(CHUNK.subarray(0, n));
    },
  });
}

/** CPU ms (user + system) of the processes whose command line matches, and of the host. */
function cpuOf(): Record<string, number> {
  const out: Record<string, number> = { host: 0, dockerd: 0, containerd: 0, client: 0 };
  const stat = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  out.host = ((stat[0]! + stat[1]! + stat[2]! + stat[5]! + stat[6]!) * 1000) / 100;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const key = cmd.startsWith('dockerd')
        ? 'dockerd'
        : cmd.includes('containerd')
          ? 'containerd'
          : cmd.includes('files-client')
            ? 'client'
            : null;
      if (!key) continue;
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      out[key]! += ((Number(f[11]) + Number(f[12])) * 1000) / 100;
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function stage(name: string, fn: () => Promise<unknown>): Promise<void> {
  const ms: number[] = [];
  const cpu: number[] = [];
  const others: Record<string, number>[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const before = cpuOf();
    const c = process.cpuUsage();
    const t = process.hrtime.bigint();
    await fn();
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    const u = process.cpuUsage(c);
    cpu.push((u.user + u.system) / 1000);
    const after = cpuOf();
    others.push(
      Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - (before[k] ?? 0)])),
    );
  }
  console.log(
    `   ${others
      .map((o) =>
        Object.entries(o)
          .map(([k, v]) => `${k} ${v.toFixed(0)}`)
          .join(' '),
      )
      .join(' | ')}`,
  );
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(
    `${name.padEnd(48)} ${(SIZE / 2 ** 20 / (med(ms) / 1000)).toFixed(0).padStart(5)} MB/s  ` +
      `${med(ms).toFixed(0).padStart(5)} ms  cpu ${med(cpu).toFixed(0).padStart(5)} ms (min ${Math.min(...cpu).toFixed(0)})  [${ms.map((m) => m.toFixed(0)).join(' ')}]`,
  );
}

function client() {
  const child = fork(fileURLToPath(new URL('./files-client.ts', import.meta.url)), {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ask = (req: ClientRequest) =>
    new Promise<ClientReply>((resolve) => {
      child.once('message', resolve);
      child.send(req);
    });
  return { ask, close: () => child.disconnect() };
}

async function main(): Promise<void> {
  const only = new Set((process.env.ONLY ?? '').split(',').filter(Boolean));
  const want = (s: string) => only.size === 0 || only.has(s);
  type Handler = (req: IncomingMessage, res: ServerResponse) => void;
  let handler: Handler = () => {};
  // As the service's server (services/api/src/http/server.ts).
  const server = createServer({ highWaterMark: 1024 * 1024 }, (req, res) => handler(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const c = client();
  const upload = () =>
    c.ask({ op: 'upload', url: `${url}/up`, apiKey: 'x', chunk: CHUNK, size: SIZE });
  const answer = (res: ServerResponse) => res.end(JSON.stringify({ id: 'x', bytes: SIZE }));

  if (want('http')) {
    handler = (req, res) => {
      req.on('data', () => {});
      req.on('end', () => answer(res));
    };
    await stage('up: HTTP body read, dropped', upload);
  }
  /** The service's multipart parsing, each part to `store`, without an Express app around it. */
  const uploadsTo = (store: (part: Readable) => Promise<unknown>): Handler => {
    const parse = singleFileUpload(
      SIZE + 1,
      (_req, file) => store(file.stream),
      async () => {},
    );
    return (req, res) => {
      // Express's one request method that the upload uses.
      const r = Object.assign(req, { header: (n: string) => req.headers[n.toLowerCase()] });
      void parse(r as never, res as never).then(() => answer(res));
    };
  };
  if (want('multer')) {
    handler = uploadsTo(
      (part) =>
        new Promise<number>((resolve) => {
          let n = 0;
          part.on('data', (c: Buffer) => (n += c.length));
          part.on('end', () => resolve(n));
        }),
    );
    await stage('up: HTTP + multer/busboy, part dropped', upload);
  }
  if (want('download-http')) {
    handler = (_req, res) => {
      res.setHeader('content-length', SIZE);
      source().pipe(res);
    };
    await stage('down: HTTP body from memory', () =>
      c.ask({ op: 'download', url: `${url}/down`, apiKey: 'x', size: SIZE }),
    );
  }
  const runtime = labelledRuntime(`stages${randomBytes(4).toString('hex')}`);
  const spec = aSandboxSpec({ memoryLimitBytes: 2 * 1024 ** 3 });
  await runtime.create(spec);
  const ref = { containerId: spec.containerId, uid: spec.uid };
  const user = `${spec.uid}:${spec.uid}`;
  const files = new DockerSandboxFiles({ client: testDocker });
  try {
    const sh = (cmd: string) => dockerExec(spec.containerId, ['sh', '-c', cmd], user);
    const exec = (argv: string[], stdin: boolean) =>
      startExec(testDocker, {
        containerId: spec.containerId,
        user,
        argv,
        stdin,
        tag: 'berth:stage',
        deadlineMs: 600_000,
      });
    const put = async (path: string, data: Buffer) => {
      const run = await exec(['sh', '-c', `cat > ${path}`], true);
      run.stdout.resume();
      run.stderr.resume();
      run.stdin!.end(data);
      await run.end;
    };
    const raw = async (argv: string[], framed: boolean, piece = CHUNK.length, cork = false) => {
      const run = await exec(argv, true);
      run.stdout.resume();
      run.stderr.resume();
      const stdin = run.stdin!;
      for await (const chunk of source()) {
        if (cork) stdin.cork();
        if (framed) {
          const h = Buffer.allocUnsafe(4);
          h.writeUInt32BE(chunk.length);
          stdin.write(h);
        }
        let ok = true;
        for (let at = 0; at < chunk.length; at += piece)
          ok = stdin.write(chunk.subarray(at, at + piece));
        if (cork) stdin.uncork();
        if (!ok) await new Promise((r) => stdin.once('drain', r));
      }
      if (framed) stdin.write(Buffer.alloc(4));
      stdin.end();
      await run.end;
    };
    if (want('exec-cat'))
      await stage('up: exec stdin → cat > /mnt/data', () =>
        raw(['sh', '-c', 'cat > /mnt/data/cat.bin'], false),
      );
    if (want('exec-pieces')) {
      await stage('up: exec → cat > /mnt/data, 64 KiB writes', () =>
        raw(['sh', '-c', 'cat > /mnt/data/cat.bin'], false, 64 * 1024),
      );
      await stage('up: exec → cat > /mnt/data, 64 KiB corked/MiB', () =>
        raw(['sh', '-c', 'cat > /mnt/data/cat.bin'], false, 64 * 1024, true),
      );
      await stage('up: exec → cat > /mnt/data, 1 MiB writes', () =>
        raw(['sh', '-c', 'cat > /mnt/data/cat.bin'], false),
      );
    }
    if (want('exec-null'))
      await stage('up: exec stdin → cat > /dev/null', () =>
        raw(['sh', '-c', 'cat > /dev/null'], false),
      );
    if (want('files-write'))
      await stage('up: DockerSandboxFiles.write (framer+helper)', () =>
        files.write(ref, 'w.bin', source(), { maxBytes: SIZE + 1 }),
      );
    if (want('helper')) {
      // The helper alone: frames prepared in /mnt/data, read from the file, no exec stream.
      await files.write(ref, 'w.bin', source(), { maxBytes: SIZE + 1 });
      const helper = readFileSync(
        new URL('../packages/sandbox-docker/src/files-helper.py', import.meta.url),
        'utf8',
      );
      await sh(
        `python3 -c "
import struct,sys
o=open('/mnt/data/framed','wb')
d=open('/mnt/data/w.bin','rb')
while True:
  b=d.read(262144)
  if not b: break
  o.write(struct.pack('>I',len(b))+b)
o.write(b'\\0\\0\\0\\0')"`,
      );
      await put('/tmp/h.py', Buffer.from(helper));
      for (let i = 0; i < ROUNDS; i++) {
        const out = await sh(
          `s=$(date +%s%N); python3 -I -S /tmp/h.py tag write h.bin < /mnt/data/framed >/dev/null; m=$(date +%s%N); python3 -I -S /tmp/h.py tag read w.bin > /dev/null; e=$(date +%s%N); echo $(( (m-s)/1000000 )) $(( (e-m)/1000000 ))`,
        );
        console.log(`helper alone in the sandbox: write ${out.stdout.trim()} ms (write, read)`);
      }
      await sh('rm -f /mnt/data/framed /mnt/data/h.bin');
    }
    if (want('files-open')) {
      await files.write(ref, 'w.bin', source(), { maxBytes: SIZE + 1 });
      await stage('down: DockerSandboxFiles.open, consumed', async () => {
        const f = await files.open(ref, 'w.bin');
        let n = 0;
        for await (const chunk of f!.stream) n += (chunk as Buffer).length;
        if (n !== SIZE) throw new Error(`read ${n}`);
      });
      await stage('down: exec cat, demuxed stdout consumed', async () => {
        const run = await exec(['cat', '/mnt/data/w.bin'], false);
        run.stderr.resume();
        let n = 0;
        for await (const chunk of run.stdout) n += (chunk as Buffer).length;
        await run.end;
        if (n !== SIZE) throw new Error(`read ${n}`);
      });
    }
    if (want('full-up')) {
      handler = uploadsTo((part) => files.write(ref, 'f.bin', part, { maxBytes: SIZE + 1 }));
      await stage('up: HTTP + multer + DockerSandboxFiles.write', upload);
    }
    if (want('full-down')) {
      await files.write(ref, 'w.bin', source(), { maxBytes: SIZE + 1 });
      handler = (_req, res) => {
        const r = Object.assign(res, { status: (n: number) => (res.statusCode = n) });
        void files
          .open(ref, 'w.bin')
          .then((f) => sendFile(r as never, 'w.bin', f!.size, f!.stream));
      };
      await stage('down: DockerSandboxFiles.open + sendFile', () =>
        c.ask({ op: 'download', url: `${url}/down`, apiKey: 'x', size: SIZE }),
      );
    }
  } finally {
    c.close();
    server.close();
    await runtime.remove(spec.containerId);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
