import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  DeadlineExceededError,
  InvalidRequestError,
  type ResolvedSkill,
  type SkillInstaller,
} from '@berth/core';
import type { DockerClient } from './docker-client.js';
import { startExec } from './sandbox-exec.js';

const HELPER = readFileSync(new URL('./skills-helper.py', import.meta.url), 'utf8');
/** The one exec that runs as root in a sandbox: it fills /mnt/skills before any sandbox code runs. */
const ROOT_USER = '0:0';

function* frames(skills: ResolvedSkill[]): Generator<Buffer> {
  for (const skill of skills) {
    for (const f of skill.files) {
      const path = Buffer.from(`${skill.name}/${f.path}`);
      const header = Buffer.alloc(12);
      header.writeUInt32BE(path.length, 0);
      yield Buffer.concat([header.subarray(0, 4), path]);
      header.writeUInt32BE(f.executable ? 1 : 0, 4);
      header.writeUInt32BE(f.data.length, 8);
      yield header.subarray(4, 12);
      yield f.data;
    }
  }
  yield Buffer.alloc(4);
}

export interface DockerSkillInstallerOptions {
  client: DockerClient;
  /** Deadline of the whole placement (ms). */
  timeoutMs?: number;
}

/**
 * Places skills in a new sandbox's /mnt/skills (a tmpfs owned by root, sized for them): a
 * helper run as root (still without capabilities) writes the files and makes everything
 * read-only, so the sandbox's own uid can read them but not change them.
 */
export class DockerSkillInstaller implements SkillInstaller {
  readonly #client: DockerClient;
  readonly #timeoutMs: number;

  constructor(options: DockerSkillInstallerOptions) {
    this.#client = options.client;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
  }

  async install(containerId: string, skills: ResolvedSkill[]): Promise<void> {
    const tag = `berth:skills-${randomBytes(8).toString('hex')}`;
    const run = await startExec(this.#client, {
      containerId,
      user: ROOT_USER,
      argv: ['/usr/bin/python3', '-I', '-S', '-c', HELPER, tag],
      env: ['PATH=/usr/bin:/bin', 'LANG=C.UTF-8'],
      stdin: true,
      tag,
      deadlineMs: this.#timeoutMs,
    });
    const stderr: Buffer[] = [];
    run.stderr.on('data', (c: Buffer) => {
      if (stderr.length < 64) stderr.push(c);
    });
    run.stdout.resume();
    const stdin = run.stdin!;
    stdin.on('error', () => {});
    void (async () => {
      for (const chunk of frames(skills)) {
        if (stdin.destroyed) return;
        if (!stdin.write(chunk))
          await new Promise<void>((r) => {
            stdin.once('drain', r);
            stdin.once('close', r);
          });
      }
      stdin.end();
    })();
    const end = await run.end;
    if (end.how === 'exited' && end.exitCode === 0) return;
    if (end.how === 'deadline')
      throw new DeadlineExceededError(
        `Placing the skills in the container took over ${this.#timeoutMs} ms.`,
      );
    if (end.how === 'exited' && end.exitCode === 4)
      throw new InvalidRequestError(
        "The skills do not fit in the container's skills file system.",
        { param: 'skills' },
      );
    throw new Error(
      `placing skills failed (${end.how}, exit ${end.exitCode ?? 'none'}): ${Buffer.concat(stderr).toString('utf8').slice(0, 2000)}`,
    );
  }
}
