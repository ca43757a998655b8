import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface BerthLogLine {
  level: number;
  time: number;
  msg: string;
  status?: number;
  err?: { type?: string; message?: string };
  /** The line's first `msg` when it has two (the error's message, then the log message). */
  detail?: string;
}

/**
 * The service as a child process, run the way `pnpm start` does, under a supervisor that starts it
 * again when it dies (as systemd or Docker would). Its JSON log goes to a file the run reads back.
 */
export class BerthProcess {
  #child: ChildProcess | null = null;
  #stopping = false;
  /** Exits nobody asked for (crashes, failed starts). */
  readonly unplannedExits: string[] = [];
  readonly starts: number[] = [];

  constructor(
    private readonly options: {
      cwd: string;
      env: Record<string, string>;
      url: string;
      logPath: string;
    },
  ) {}

  start(): void {
    const log = openSync(this.options.logPath, 'a');
    const child = spawn(
      process.execPath,
      ['--conditions=development', '--import', 'tsx', 'services/api/src/main.ts'],
      {
        cwd: this.options.cwd,
        env: { PATH: process.env.PATH ?? '', ...this.options.env },
        stdio: ['ignore', log, log],
      },
    );
    closeSync(log);
    this.#child = child;
    this.starts.push(Date.now());
    child.once('exit', (code, signal) => {
      if (this.#child !== child) return;
      this.#child = null;
      if (this.#stopping) return;
      this.unplannedExits.push(`${new Date().toISOString()} code=${code} signal=${signal}`);
      // The supervisor's restart, with a little backoff.
      setTimeout(() => {
        if (!this.#stopping && !this.#child) this.start();
      }, 1000);
    });
  }

  /** SIGKILL, then started again at once, as a supervisor would. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      this.#child = null;
      child.kill('SIGKILL');
      await exited;
    }
    this.start();
  }

  /** SIGTERM (graceful), SIGKILL after 30 s. */
  async stop(): Promise<void> {
    this.#stopping = true;
    const child = this.#child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    if (!(await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]))) {
      child.kill('SIGKILL');
      await exited;
    }
    this.#child = null;
  }

  /** Waits until `path` answers 200 (e.g. /healthz, /readyz); returns how long that took. */
  async waitFor(path: string, ms: number): Promise<number> {
    const start = Date.now();
    for (;;) {
      try {
        const res = await fetch(`${this.options.url}${path}`, {
          signal: AbortSignal.timeout(3000),
        });
        await res.arrayBuffer();
        if (res.ok) return Date.now() - start;
      } catch {
        // Not up yet.
      }
      if (Date.now() - start > ms) throw new Error(`berth did not answer ${path} 200 in ${ms} ms`);
      await sleep(200);
    }
  }

  logLines(): BerthLogLine[] {
    const lines: BerthLogLine[] = [];
    for (const raw of readFileSync(this.options.logPath, 'utf8').split('\n')) {
      if (!raw.startsWith('{')) continue;
      try {
        const line = JSON.parse(raw) as BerthLogLine;
        const first = /"msg":"((?:[^"\\]|\\.)*)"/.exec(raw)?.[1];
        if (first !== undefined && first !== line.msg) line.detail = first;
        lines.push(line);
      } catch {
        // A line cut by the SIGKILL.
      }
    }
    return lines;
  }

  /** Waits for a `reconciled` line logged after `after` (epoch ms). */
  async waitForReconcile(after: number, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.logLines().some((l) => l.msg === 'reconciled' && l.time > after)) {
      if (Date.now() > deadline) throw new Error(`no reconcile completed in ${ms} ms`);
      await sleep(500);
    }
  }
}
