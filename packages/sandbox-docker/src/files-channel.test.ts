import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_SEND_BUFFER, sendBufferOf } from '@berth/socket-buffer';
import { FilesChannel } from './files-channel.js';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

/** The service's end of a transfer's socket, once the "helper" (here, this test) connects. */
async function transferSocket(sendBuffer?: number) {
  const hostDir = mkdtempSync(join(tmpdir(), 'berth-files-channel-'));
  const channel = new FilesChannel({
    hostDir,
    chownToSandbox: false,
    ...(sendBuffer === undefined ? {} : { sendBuffer }),
  });
  const listening = await channel.listen(process.getuid?.() ?? 0);
  const helper = connect(join(hostDir, listening.name));
  const socket = await listening.connection;
  cleanup.push(() => {
    helper.destroy();
    socket.destroy();
    listening.close();
    rmSync(hostDir, { recursive: true, force: true });
  });
  return socket;
}

describe('a files channel transfer socket', () => {
  it('asks for the default send buffer: an upload is sent from this end', async () => {
    // The kernel books twice what was asked (as root past net.core.wmem_max; CI is root).
    expect(sendBufferOf(await transferSocket())).toBe(2 * DEFAULT_SEND_BUFFER);
  });

  it('asks for the configured one, and leaves the kernel default with 0', async () => {
    expect(sendBufferOf(await transferSocket(512 * 1024))).toBe(1024 * 1024);
    expect(sendBufferOf(await transferSocket(0))).toBeLessThan(1024 * 1024);
  });
});
