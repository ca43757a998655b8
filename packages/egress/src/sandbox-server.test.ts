import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sendBufferOf } from '@berth/socket-buffer';
import type { Exchange } from './exchange.js';
import { SandboxRegistry, attachedEntry } from './registry.js';
import { sandboxServer, serveSandbox } from './sandbox-server.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

/** Serves one sandbox with `sendBuffer`; resolves with the server's end of a client connection. */
async function accepted(sendBuffer: number): Promise<Socket> {
  const limits = { idleMs: 5_000, headersMs: 5_000, requestMs: 5_000, sendBuffer };
  const dir = mkdtempSync(join(tmpdir(), 'berth-sandbox-server-'));
  const entry = attachedEntry(sandboxServer(limits), [], dir);
  const ex: Exchange = {
    judge: () => Promise.reject(new Error('not in this test')),
    record: () => {},
    idleMs: limits.idleMs,
  };
  serveSandbox(entry, new SandboxRegistry(4, 4), ex, limits, () => {});
  // Added after serveSandbox's own listener, which runs first: it sees the socket as served.
  const served = new Promise<Socket>((resolve) => entry.server.on('connection', resolve));
  const path = join(dir, 'egress.sock');
  await new Promise<void>((resolve) => entry.server.listen(path, resolve));
  const client = connect(path);
  cleanup.push(() => {
    client.destroy();
    entry.server.close();
    entry.server.closeAllConnections();
    rmSync(dir, { recursive: true, force: true });
  });
  return served;
}

describe('a sandbox connection', () => {
  it('is given the send buffer the proxy was configured with', async () => {
    const socket = await accepted(1024 * 1024);
    // The kernel books twice what was asked (as root past net.core.wmem_max; CI is root).
    expect(sendBufferOf(socket)).toBe(2 * 1024 * 1024);
  });

  it("keeps the kernel's default with 0", async () => {
    const socket = await accepted(0);
    const fallback = Number(readFileSync('/proc/sys/net/core/wmem_default', 'utf8'));
    expect(sendBufferOf(socket)).toBe(fallback);
  });
});
