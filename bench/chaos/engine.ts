import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import Dockerode from 'dockerode';

const ROOT = '/var/lib/berth-chaos/docker';
const RUN = '/run/berth-chaos';

/**
 * A Docker engine of the chaos run's own, so restarting it never touches the machine's main
 * dockerd (other suites run there). It starts its own containerd under its exec root. The data
 * root survives runs as an image cache; containers in it are removed at the end of each run.
 */
export class ChaosEngine {
  readonly socketPath = `${RUN}/docker.sock`;
  readonly docker = new Dockerode({ socketPath: this.socketPath });
  #child: ChildProcess | null = null;

  constructor(private readonly logPath: string) {}

  async start(): Promise<void> {
    mkdirSync(ROOT, { recursive: true });
    mkdirSync(`${RUN}/exec`, { recursive: true });
    await this.#stopLeftover();
    const log = openSync(this.logPath, 'a');
    const child = spawn(
      'dockerd',
      [
        '--data-root',
        ROOT,
        '--exec-root',
        `${RUN}/exec`,
        '--pidfile',
        `${RUN}/dockerd.pid`,
        '-H',
        `unix://${this.socketPath}`,
        '--bridge',
        'none',
        '--iptables=false',
        '--ip6tables=false',
        '--ip-masq=false',
      ],
      { stdio: ['ignore', log, log] },
    );
    closeSync(log);
    this.#child = child;
    child.once('exit', () => {
      if (this.#child === child) this.#child = null;
    });
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (!this.#child) throw new Error(`the chaos dockerd exited at start; see ${this.logPath}`);
      try {
        await Promise.race([
          this.docker.ping(),
          sleep(2000).then(() => Promise.reject(new Error('ping timed out'))),
        ]);
        return;
      } catch (error) {
        if (Date.now() > deadline)
          throw new Error('the chaos dockerd did not answer in 60 s', { cause: error });
        await sleep(250);
      }
    }
  }

  /** SIGTERM, as systemd would: the daemon stops its containers, then exits. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const killed = await Promise.race([exited.then(() => true), sleep(60_000).then(() => false)]);
    if (!killed) {
      child.kill('SIGKILL');
      await exited;
    }
    this.#child = null;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Copies an image from the main engine once; later runs find it in the cache. */
  async ensureImage(main: Dockerode, name: string): Promise<void> {
    try {
      await this.docker.getImage(name).inspect();
      return;
    } catch {
      // Not there yet: load it below.
    }
    const tar = await main.getImage(name).get();
    const loading = await this.docker.loadImage(tar);
    await new Promise<void>((resolve, reject) =>
      this.docker.modem.followProgress(loading, (err) => (err ? reject(err) : resolve())),
    );
    await this.docker.getImage(name).inspect();
  }

  /** A chaos dockerd a crashed earlier run left behind (its pidfile names it). */
  async #stopLeftover(): Promise<void> {
    const pidfile = `${RUN}/dockerd.pid`;
    if (!existsSync(pidfile)) return;
    const pid = Number(readFileSync(pidfile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return;
    }
    if (!cmdline.includes(ROOT)) return;
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 240 && existsSync(`/proc/${pid}`); i++) await sleep(250);
  }
}
