import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, unlink } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_SEND_BUFFER, setSendBuffer } from '@berth/socket-buffer';

/** Where every sandbox sees the channel's directory (read-only). */
export const SANDBOX_FILES_CHANNEL_DIR = '/run/berth-files';

export interface FilesChannelOptions {
  /** The host directory mounted read-only into every sandbox at SANDBOX_FILES_CHANNEL_DIR. */
  hostDir: string;
  /**
   * Give each socket to the sandbox's uid alone (0600): possible only for a service running as
   * root. Otherwise sockets are 0666, guarded by their 128-bit names in a directory nobody lists.
   */
  chownToSandbox: boolean;
  /**
   * Send buffer asked of the kernel for each transfer's socket, in bytes (an upload's sender is
   * this process); default DEFAULT_SEND_BUFFER, 0 keeps the kernel's default.
   */
  sendBuffer?: number;
}

/** One transfer's socket: the first connection to it is the file helper's. */
export interface ChannelSocket {
  /** The socket's file name, passed to the helper (`<32 hex>.sock`). */
  name: string;
  /** The first connection; later ones are refused. Never rejects. */
  connection: Promise<Socket>;
  /** Stops listening and removes the socket file (idempotent). */
  close(): void;
}

/**
 * A transfer's bytes over a Unix socket instead of the exec's stdio: the helper in the sandbox
 * connects to a socket made for that one transfer, and the bytes pass kernel to kernel, not
 * through the engine's and the shim's copies of an attach stream. The directory is 0711 (nobody
 * lists it) and each socket has a name nobody can guess and is gone once connected to.
 */
export class FilesChannel {
  readonly hostDir: string;
  readonly #chown: boolean;
  readonly #sendBuffer: number;

  constructor(options: FilesChannelOptions) {
    this.hostDir = options.hostDir;
    this.#chown = options.chownToSandbox;
    this.#sendBuffer = options.sendBuffer ?? DEFAULT_SEND_BUFFER;
  }

  /**
   * Creates the directory, 0711, if it is missing (a sandbox's bind source must exist); cheap, so
   * done before every create. One that exists is left as it is: it may be another user's.
   */
  async ensureDir(): Promise<void> {
    await mkdir(this.hostDir, { recursive: true, mode: 0o711 });
  }

  /** A socket for one transfer into or out of the sandbox of `uid`. */
  async listen(uid: number): Promise<ChannelSocket> {
    await this.ensureDir();
    const name = `${randomBytes(16).toString('hex')}.sock`;
    const path = join(this.hostDir, name);
    let accept!: (socket: Socket) => void;
    const connection = new Promise<Socket>((resolve) => (accept = resolve));
    let closed = false;
    const server = createServer({ pauseOnConnect: true });
    const close = (): void => {
      if (closed) return;
      closed = true;
      // Not awaited: a server's close waits for its connections, and the transfer holds one.
      server.close();
      void unlink(path).catch(() => {});
    };
    server.on('connection', (socket) => {
      if (closed) return void socket.destroy();
      close();
      setSendBuffer(socket, this.#sendBuffer);
      accept(socket);
    });
    server.on('error', () => close());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    try {
      if (this.#chown) {
        await chown(path, uid, uid);
        await chmod(path, 0o600);
      } else {
        await chmod(path, 0o666);
      }
    } catch (error) {
      close();
      throw error;
    }
    return { name, connection, close };
  }
}
