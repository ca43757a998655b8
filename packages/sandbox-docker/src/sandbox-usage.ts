import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SandboxUsage, SandboxUsageReader } from '@berth/core';
import type { DockerClient } from './docker-client.js';
import { instanceFilter, LABELS } from './labels.js';

export interface CgroupUsageReaderOptions {
  client: DockerClient;
  instance: string;
  /** Where the host's cgroup hierarchy is mounted; default /sys/fs/cgroup. */
  root?: string;
}

/** cgroup directories a Docker container's files may sit in: v2 and v1, cgroupfs and systemd. */
const layouts = (root: string, id: string) => ({
  v2: [join(root, 'docker', id), join(root, 'system.slice', `docker-${id}.scope`)],
  v1: (controller: string) => [
    join(root, controller, 'docker', id),
    join(root, controller, 'system.slice', `docker-${id}.scope`),
  ],
});

const firstNumber = async (paths: string[]): Promise<number | null> => {
  for (const p of paths) {
    const text = await readFile(p, 'utf8').catch(() => null);
    if (text === null) continue;
    const n = Number(text.trim().split(/\s+/)[0]);
    if (Number.isFinite(n)) return n;
  }
  return null;
};

const statField = async (paths: string[], field: string): Promise<number | null> => {
  for (const p of paths) {
    const text = await readFile(p, 'utf8').catch(() => null);
    if (text === null) continue;
    const line = text.split('\n').find((l) => l.startsWith(`${field} `));
    if (line) return Number(line.slice(field.length + 1));
  }
  return null;
};

/**
 * Live usage of running sandboxes without a Docker stats call each (those take a second apiece):
 * one container list maps Berth ids to Docker ids, then the kernel's cgroup files answer. The
 * whole read has one deadline; a sandbox that hasn't answered by then is left out, never waited on.
 */
export class CgroupUsageReader implements SandboxUsageReader {
  readonly #root: string;

  constructor(private readonly options: CgroupUsageReaderOptions) {
    this.#root = options.root ?? '/sys/fs/cgroup';
  }

  async read(containerIds: string[], deadlineMs: number): Promise<Map<string, SandboxUsage>> {
    const out = new Map<string, SandboxUsage>();
    if (containerIds.length === 0) return out;
    const started = Date.now();
    const { client } = this.options;
    const wanted = new Set(containerIds);
    const list = await client.call(
      'list',
      (abortSignal) =>
        client.docker.listContainers({
          filters: instanceFilter(this.options.instance),
          abortSignal,
        }),
      deadlineMs,
    );
    const reads = list.flatMap((c) => {
      const id = c.Labels[LABELS.containerId];
      if (!id || !wanted.has(id)) return [];
      return [this.#one(c.Id).then((u) => out.set(id, u))];
    });
    let timer: NodeJS.Timeout | undefined;
    const left = Math.max(1, deadlineMs - (Date.now() - started));
    await Promise.race([
      Promise.allSettled(reads),
      new Promise((resolve) => (timer = setTimeout(resolve, left))),
    ]);
    clearTimeout(timer);
    // A copy: reads still in flight past the deadline must not change what was answered.
    return new Map(out);
  }

  async #one(dockerId: string): Promise<SandboxUsage> {
    const l = layouts(this.#root, dockerId);
    const v2 = await firstNumber(l.v2.map((d) => join(d, 'memory.current')));
    if (v2 !== null) {
      const inactive =
        (await statField(
          l.v2.map((d) => join(d, 'memory.stat')),
          'inactive_file',
        )) ?? 0;
      const usec = await statField(
        l.v2.map((d) => join(d, 'cpu.stat')),
        'usage_usec',
      );
      return {
        memoryBytes: Math.max(0, v2 - inactive),
        cpuSeconds: usec === null ? null : usec / 1e6,
        processes: await firstNumber(l.v2.map((d) => join(d, 'pids.current'))),
      };
    }
    const mem = await firstNumber(l.v1('memory').map((d) => join(d, 'memory.usage_in_bytes')));
    const inactive =
      (await statField(
        l.v1('memory').map((d) => join(d, 'memory.stat')),
        'total_inactive_file',
      )) ?? 0;
    const ns = await firstNumber(l.v1('cpuacct').map((d) => join(d, 'cpuacct.usage')));
    return {
      memoryBytes: mem === null ? null : Math.max(0, mem - inactive),
      cpuSeconds: ns === null ? null : ns / 1e9,
      processes: await firstNumber(l.v1('pids').map((d) => join(d, 'pids.current'))),
    };
  }
}
