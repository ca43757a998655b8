import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.js';
import type { ContainerRecord } from '../container.js';
import { PayloadTooLargeError } from '../errors.js';
import type { ArchiveStore } from '../ports/archive-store.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { ArchiveState, ContainerFileRecord, ContainerFileStore } from '../ports/file-store.js';
import type { SandboxFiles } from '../ports/sandbox-files.js';
import { ContainerArchiver, archiveKey } from './container-archiver.js';

const container: ContainerRecord = {
  id: 'cntr_1',
  projectId: 'p',
  name: 'c',
  createdAt: 0,
  status: 'running',
  lastActiveAt: new Date(0),
  expiresAfterMinutes: 1,
  memoryLimit: '1g',
  networkPolicy: { type: 'disabled' },
  statusReason: null,
  sandboxUid: 100_001,
};

/** A sandbox holding `files` (path → bytes), rows mirroring them, and an in-memory blob store. */
function setup(
  files: Record<string, Buffer | 'unreadable'>,
  options: { listFails?: boolean } = {},
) {
  const rows: ContainerFileRecord[] = Object.entries(files).map(([path, data], i) => ({
    id: `cfile_${i}`,
    containerId: container.id,
    path,
    bytes: data === 'unreadable' ? 10 : data.length,
    source: 'assistant',
    createdAt: i,
  }));
  const states = new Map<string, ArchiveState>();
  const blobs = new Map<string, Buffer>();
  const errors: unknown[] = [];
  const sandbox: SandboxFiles = {
    async list() {
      if (options.listFails) throw new Error('helper killed');
      return rows.map((r) => ({ path: r.path, bytes: r.bytes }));
    },
    async open(_ref, path) {
      const data = files[path];
      if (data === 'unreadable') throw new Error('helper stalled');
      return data ? { size: data.length, stream: Readable.from([data]) } : null;
    },
    write: async () => ({ bytes: 0 }),
    remove: async () => {},
  };
  const blobStore: BlobStore = {
    async put(key, data, { maxBytes }) {
      const chunks: Buffer[] = [];
      for await (const c of data) chunks.push(c as Buffer);
      const all = Buffer.concat(chunks);
      if (all.length > maxBytes) throw new PayloadTooLargeError('too large');
      blobs.set(key, all);
      return { bytes: all.length };
    },
    async open(key) {
      const b = blobs.get(key);
      return b ? { size: b.length, stream: Readable.from([b]) } : null;
    },
    async delete(key) {
      blobs.delete(key);
    },
  };
  const archives: ArchiveStore = {
    filesOf: async () => rows,
    setFileState: async (_c, id, state) => void states.set(id, state),
    purgeable: async () =>
      rows
        .filter((r) => states.get(r.id) === 'archived')
        .map((r) => ({ containerId: r.containerId, fileId: r.id })),
    archivedOf: async () => rows.filter((r) => states.get(r.id) === 'archived').map((r) => r.id),
  };
  const archiver = new ContainerArchiver({
    sandbox,
    files: { sync: async () => {} } as unknown as ContainerFileStore,
    archives,
    blobs: blobStore,
    clock: new ManualClock(new Date(1_000_000)),
    maxBytes: 100,
    timeoutMs: 5_000,
    onError: (e) => errors.push(e),
  });
  return { archiver, states, blobs, errors };
}

describe('ContainerArchiver', () => {
  it('keeps files oldest first up to the cap, and records each one that is not kept', async () => {
    const { archiver, states, blobs, errors } = setup({
      'a.txt': Buffer.alloc(60, 1),
      'big.bin': Buffer.alloc(50, 2),
      'broken.txt': 'unreadable',
      'b.txt': Buffer.alloc(30, 3),
    });
    const outcome = await archiver.archive(container);
    expect(outcome.archivedAt).toEqual(new Date(1_000_000));
    expect(outcome.archiveError).toBe('1 file(s) could not be archived');
    expect(Object.fromEntries(states)).toEqual({
      cfile_0: 'archived',
      cfile_1: 'over_cap',
      cfile_2: 'failed',
      cfile_3: 'archived',
    });
    expect(blobs.get(archiveKey(container.id, 'cfile_3'))).toEqual(Buffer.alloc(30, 3));
    expect(errors).toHaveLength(1);
  });

  it('never throws: a sandbox that cannot be listed gives no archive and one reported error', async () => {
    const { archiver, errors } = setup({ 'a.txt': Buffer.from('x') }, { listFails: true });
    const outcome = await archiver.archive(container);
    expect(outcome).toEqual({ archivedAt: null, archiveError: 'helper killed' });
    expect(errors).toHaveLength(1);
  });

  it('purges the bytes of archives that are due, and marks them purged', async () => {
    const { archiver, states, blobs } = setup({ 'a.txt': Buffer.from('x') });
    await archiver.archive(container);
    expect(await archiver.purge(new Date())).toBe(1);
    expect(blobs.size).toBe(0);
    expect(states.get('cfile_0')).toBe('purged');
  });
});
