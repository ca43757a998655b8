import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  openSync,
  closeSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type Dockerode from 'dockerode';
import { DockerClient } from '@berth/sandbox-docker';

const ROOT = '/var/lib/berth-chaos/docker';
const RUN = '/run/berth-chaos';

/**
 * A Docker engine of the chaos run's own, so restarting it never touches the machine's main
 * dockerd (other suites run there). It starts its own containerd under its exec root. The data
 * root survives runs as an image cache; containers in it are removed at the end of each run.
 */
export class ChaosEngine {
  readonly socketPath = `${RUN}/docker.sock`;
  readonly client = new DockerClient({ socketPath: this.socketPath, callTimeoutMs: 30_000 });
  readonly docker = this.client.docker;
  #child: ChildProcess | null = null;

  constructor(private readonly logPath: string) {}

  /** One chaos run at a time: the engine's paths are fixed. */
  lock(): void {
    mkdirSync(RUN, { recursive: true });
    const lockfile = `${RUN}/run.pid`;
    try {
      writeFileSync(lockfile, String(process.pid), { flag: 'wx' });
      return;
    } catch {
      const holder = Number(readFileSync(lockfile, 'utf8').trim());
      if (holder > 0 && existsSync(`/proc/${holder}`))
        throw new Error(`another chaos run (pid ${holder}) holds ${lockfile}`);
    }
    writeFileSync(lockfile, String(process.pid));
  }

  unlock(): void {
    rmSync(`${RUN}/run.pid`, { force: true });
  }

  /**
   * `fresh` (a run's first start) drops the engine's stored networks: dockerd otherwise puts a
   * bridge address it stored earlier back on the bridge, whatever address the bridge has now.
   * Restarts keep them: Postgres's container refers to the stored host network.
   */
  async start(options: { fresh?: boolean } = {}): Promise<void> {
    mkdirSync(ROOT, { recursive: true });
    mkdirSync(`${RUN}/exec`, { recursive: true });
    await this.#stopLeftover();
    if (options.fresh) rmSync(`${ROOT}/network/files/local-kv.db`, { force: true });
    ensureBridge();
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
        // Never `--bridge none`: a dockerd started with it deletes the host's docker0, breaking the
        // main engine. A bridge of its own, with no NAT, keeps the two engines apart.
        '--bridge',
        CHAOS_BRIDGE,
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
        break;
      } catch (error) {
        if (Date.now() > deadline)
          throw new Error('the chaos dockerd did not answer in 60 s', { cause: error });
        await sleep(250);
      }
    }
    checkBridge();
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

  /** The end of a run: the daemon stopped and its bridge removed. */
  async destroy(): Promise<void> {
    await this.stop();
    removeBridge();
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

const CHAOS_BRIDGE = 'berthchaos0';
/**
 * The bridge's address: outside Docker's default pools (172.17–31/16, 192.168/16), so the main
 * engine never hands it out, and checked against the host's routes before use. Nothing runs on
 * the bridge (sandboxes have no network, Postgres uses the host's), dockerd only needs it to exist.
 */
const CHAOS_BRIDGE_CIDR = '10.213.77.1/30';

/** Creates the chaos engine's own bridge; refuses an address any host route already covers. */
function ensureBridge(): void {
  const addresses = execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' });
  const mine = addresses
    .split('\n')
    .find((l) => l.split(/\s+/)[1] === CHAOS_BRIDGE && l.includes(CHAOS_BRIDGE_CIDR));
  if (mine) return;
  const routes = execFileSync('ip', ['-4', 'route', 'show'], { encoding: 'utf8' });
  if (routes.includes('10.213.77.'))
    throw new Error(
      `${CHAOS_BRIDGE_CIDR} is in use on this host; pick another for the chaos bridge`,
    );
  // A bridge of ours with another address (an earlier version of this file): make it anew.
  removeBridge();
  execFileSync('ip', ['link', 'add', CHAOS_BRIDGE, 'type', 'bridge']);
  execFileSync('ip', ['addr', 'add', CHAOS_BRIDGE_CIDR, 'dev', CHAOS_BRIDGE]);
  execFileSync('ip', ['link', 'set', CHAOS_BRIDGE, 'up']);
}

/** The bridge holds our address and no other: an address on the host's networks would cut it off. */
function checkBridge(): void {
  const lines = execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', CHAOS_BRIDGE], {
    encoding: 'utf8',
  })
    .split('\n')
    .filter((l) => l.includes(' inet '));
  const foreign = lines.filter((l) => !l.includes(` inet ${CHAOS_BRIDGE_CIDR} `));
  if (foreign.length > 0) {
    removeBridge();
    throw new Error(
      `the chaos dockerd put another address on ${CHAOS_BRIDGE}: ${foreign.join('; ')}`,
    );
  }
}

/** Leaves the host's links as the run found them. */
export function removeBridge(): void {
  try {
    execFileSync('ip', ['link', 'del', CHAOS_BRIDGE], { stdio: 'ignore' });
  } catch {
    // Not there.
  }
}
