import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DockerClient } from './docker-client.js';
import { LABELS } from './labels.js';
import { CgroupUsageReader } from './sandbox-usage.js';

const roots: string[] = [];
afterEach(() => {
  while (roots.length) rmSync(roots.pop()!, { recursive: true, force: true });
});

/** A client whose one list call answers these sandboxes (Berth id → Docker id). */
const fakeClient = (sandboxes: Record<string, string>, calls: string[] = []) =>
  ({
    call: (op: string, fn: (s: AbortSignal) => Promise<unknown>) => {
      calls.push(op);
      return fn(new AbortController().signal);
    },
    docker: {
      listContainers: async () =>
        Object.entries(sandboxes).map(([id, dockerId]) => ({
          Id: dockerId,
          Labels: { [LABELS.containerId]: id },
        })),
    },
  }) as unknown as DockerClient;

const tree = (files: Record<string, string>) => {
  const root = mkdtempSync(join(tmpdir(), 'cgroup-'));
  roots.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
};

describe('CgroupUsageReader', () => {
  it('reads cgroup v2 (systemd driver) and v1 (cgroupfs driver) files, after one Docker call', async () => {
    const root = tree({
      'system.slice/docker-d2.scope/memory.current': '104857600\n',
      'system.slice/docker-d2.scope/memory.stat': 'anon 1\ninactive_file 4857600\nactive_file 2\n',
      'system.slice/docker-d2.scope/cpu.stat': 'usage_usec 2500000\nuser_usec 1\n',
      'system.slice/docker-d2.scope/pids.current': '7\n',
      'memory/docker/d1/memory.usage_in_bytes': '2097152\n',
      'memory/docker/d1/memory.stat': 'cache 1\ntotal_inactive_file 1048576\n',
      'cpuacct/docker/d1/cpuacct.usage': '1500000000\n',
      'pids/docker/d1/pids.current': '3\n',
    });
    const calls: string[] = [];
    const reader = new CgroupUsageReader({
      client: fakeClient({ cntr_a: 'd2', cntr_b: 'd1', cntr_other: 'd9' }, calls),
      instance: 'x',
      root,
    });
    const usage = await reader.read(['cntr_a', 'cntr_b', 'cntr_missing'], 1_000);
    expect(calls).toEqual(['list']);
    expect(usage.get('cntr_a')).toEqual({
      memoryBytes: 100_000_000,
      cpuSeconds: 2.5,
      processes: 7,
    });
    expect(usage.get('cntr_b')).toEqual({ memoryBytes: 1_048_576, cpuSeconds: 1.5, processes: 3 });
    // Not asked for, or not listed by Docker: not read.
    expect([...usage.keys()].sort()).toEqual(['cntr_a', 'cntr_b']);
  });

  it('answers by its deadline without a sandbox whose files do not answer', async () => {
    const root = tree({ 'docker/fast/memory.current': '1000\n' });
    mkdirSync(join(root, 'docker/slow'), { recursive: true });
    // A FIFO blocks its reader until a writer comes: a cgroup file that never answers.
    const fifo = join(root, 'docker/slow/memory.current');
    execFileSync('mkfifo', [fifo]);
    const reader = new CgroupUsageReader({
      client: fakeClient({ cntr_fast: 'fast', cntr_slow: 'slow' }),
      instance: 'x',
      root,
    });
    try {
      const started = Date.now();
      const usage = await reader.read(['cntr_fast', 'cntr_slow'], 200);
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(usage.get('cntr_fast')?.memoryBytes).toBe(1000);
      expect(usage.has('cntr_slow')).toBe(false);
    } finally {
      // Release the blocked read so no thread stays parked on it.
      closeSync(openSync(fifo, 'w'));
    }
  });
});
