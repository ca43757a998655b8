import http from 'node:http';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SandboxRegistry, attachedEntry, type Attached } from './registry.js';

let dir: string;
const servers: http.Server[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-registry-test-'));
});

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
  await rm(dir, { recursive: true, force: true });
});

/** An entry whose server admits each connection through `registry`, on a socket of its own. */
async function entry(registry: SandboxRegistry, name: string): Promise<[Attached, string]> {
  const server = http.createServer();
  servers.push(server);
  const e = attachedEntry(server, [], dir);
  const caps: (string | null)[] = [];
  server.on('connection', (s: net.Socket) => caps.push(registry.admit(e, s)));
  const path = join(dir, `${name}.sock`);
  await new Promise<void>((r) => server.listen(path, r));
  return [e, path];
}

async function connected(path: string, e: Attached, count: number): Promise<net.Socket> {
  const s = net.connect(path);
  await new Promise<void>((r) => s.once('connect', r));
  while (e.sockets.size < count) await new Promise((r) => setTimeout(r, 5));
  return s;
}

describe('SandboxRegistry', () => {
  it('admits connections up to the per-sandbox cap, and one more once one closes', async () => {
    const registry = new SandboxRegistry(2, 10);
    const [a, path] = await entry(registry, 'a');
    const first = await connected(path, a, 1);
    const second = await connected(path, a, 2);
    const third = new net.Socket();
    expect(registry.admit(a, third)).toBe("this sandbox's cap is 2");
    expect(registry.refused(third)).toBe(true);
    first.destroy();
    while (a.sockets.size > 1) await new Promise((r) => setTimeout(r, 5));
    expect(registry.admit(a, new net.Socket())).toBeNull();
    second.destroy();
  });

  it('admits connections up to the cap across sandboxes, whichever asks', async () => {
    const registry = new SandboxRegistry(5, 2);
    const [a, pathA] = await entry(registry, 'a');
    const [b] = await entry(registry, 'b');
    const held = [await connected(pathA, a, 1), await connected(pathA, a, 2)];
    expect(registry.admit(b, new net.Socket())).toBe("the proxy's cap across sandboxes is 2");
    for (const s of held) s.destroy();
  });

  it('starts one entry for attaches of one id at once; the later ones update it', async () => {
    const registry = new SandboxRegistry(1, 1);
    const [made] = await entry(registry, 'a');
    let starts = 0;
    const updates: number[] = [];
    const start = async () => {
      starts += 1;
      await new Promise((r) => setTimeout(r, 20));
      return made;
    };
    await Promise.all(
      [1, 2, 3].map((n) => registry.attach('x', async () => void updates.push(n), start)),
    );
    expect(starts).toBe(1);
    expect(updates.sort()).toEqual([2, 3]);
    expect(registry.ids()).toEqual(['x']);
    expect(registry.get('x')).toBe(made);
  });

  it('registers nothing when a start fails, and a later attach starts afresh', async () => {
    const registry = new SandboxRegistry(1, 1);
    const [made] = await entry(registry, 'a');
    await expect(
      registry.attach(
        'x',
        async () => {},
        () => Promise.reject(new Error('no socket')),
      ),
    ).rejects.toThrow('no socket');
    expect(registry.ids()).toEqual([]);
    await registry.attach(
      'x',
      async () => {},
      async () => made,
    );
    expect(registry.get('x')).toBe(made);
  });

  it('stops a sandbox: its server closes and its connections are cut', async () => {
    const registry = new SandboxRegistry(5, 5);
    const [a, path] = await entry(registry, 'a');
    await registry.attach(
      'a',
      async () => {},
      async () => a,
    );
    const s = await connected(path, a, 1);
    const closed = new Promise<void>((r) => s.on('close', () => r()));
    await registry.stop('a');
    await closed;
    expect(a.server.listening).toBe(false);
    expect(registry.get('a')).toBeUndefined();
  });
});
