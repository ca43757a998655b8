import net from 'node:net';
import { relayPair } from './sockets.js';

/**
 * A TCP or Unix-socket relay a test can cut and restore, standing between Berth and one of its
 * dependencies (Docker, Postgres) to play that dependency going away and coming back.
 */
export class SocketSwitch {
  #server: net.Server | null = null;
  readonly #sockets = new Set<net.Socket>();

  constructor(
    private listen: net.ListenOptions,
    private readonly target: net.NetConnectOpts,
  ) {}

  async up(): Promise<void> {
    this.#server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      relayPair(this.#sockets, client, upstream);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.#server!.listen(this.listen, resolve));
    // Come back on the same port after a cut, as a restarted server would.
    if (this.listen.port === 0) this.listen = { ...this.listen, port: this.address().port };
  }

  address(): net.AddressInfo {
    return this.#server!.address() as net.AddressInfo;
  }

  async down(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
    this.#server = null;
  }
}
