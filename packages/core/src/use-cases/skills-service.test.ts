import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { writeZip } from '@berth/skill-bundle';
import { ManualClock } from '../clock.js';
import { InvalidRequestError } from '../errors.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { SkillRecord, SkillStore, SkillVersionRecord } from '../ports/skill-store.js';
import { skillsFootprint } from '../skill-placement.js';
import { SkillsService } from './skills-service.js';

function memoryBlobs(): BlobStore & { keys: Map<string, Buffer>; opened: number } {
  const keys = new Map<string, Buffer>();
  const blobs = {
    keys,
    opened: 0,
    async put(key: string, data: Readable) {
      const chunks: Buffer[] = [];
      for await (const c of data) chunks.push(c as Buffer);
      keys.set(key, Buffer.concat(chunks));
      return { bytes: keys.get(key)!.length };
    },
    async open(key: string) {
      blobs.opened++;
      const b = keys.get(key);
      return b ? { size: b.length, stream: Readable.from([b]) } : null;
    },
    async delete(key: string) {
      keys.delete(key);
    },
  };
  return blobs;
}

/** Just enough of a store for these cases; `failInserts` makes every write fail like a lost database. */
function memoryStore(failInserts = false): SkillStore {
  const skills = new Map<string, SkillRecord>();
  const versions: SkillVersionRecord[] = [];
  const fail = () => {
    throw new Error('database went away');
  };
  return {
    async create(s, v) {
      if (failInserts) fail();
      skills.set(s.id, s);
      versions.push(v);
    },
    async get(_p, id) {
      return skills.get(id) ?? null;
    },
    async list() {
      return { items: [...skills.values()], hasMore: false };
    },
    async addVersion() {
      return fail();
    },
    async setDefault() {
      return null;
    },
    async delete() {
      return null;
    },
    async getVersion(_p, skillId, version) {
      return versions.find((v) => v.skillId === skillId && v.version === version) ?? null;
    },
    async listVersions() {
      return { items: [], hasMore: false };
    },
    async deleteVersion() {
      return null;
    },
  };
}

const md = (name: string) => Buffer.from(`---\nname: ${name}\ndescription: d\n---\n`);
const zip = (name: string, extra: { path: string; data: Buffer }[] = []) =>
  writeZip(name, [
    { path: 'SKILL.md', data: md(name), executable: false },
    ...extra.map((f) => ({ ...f, executable: false })),
  ]);

const over = (bytes?: number) => new InvalidRequestError(`over ${bytes ?? 'budget'}`);

describe('SkillsService', () => {
  it('keeps nothing when the rows cannot be written: the stored zip is removed again', async () => {
    const blobs = memoryBlobs();
    const skills = new SkillsService({ store: memoryStore(true), blobs, clock: new ManualClock() });
    await expect(skills.create('p', [{ name: 'a.zip', data: await zip('a') }])).rejects.toThrow(
      /database went away/,
    );
    expect(blobs.keys.size).toBe(0);
  });

  it('keeps nothing when the bundle is refused', async () => {
    const blobs = memoryBlobs();
    const skills = new SkillsService({ store: memoryStore(), blobs, clock: new ManualClock() });
    await expect(
      skills.create('p', [{ name: 'SKILL.md', data: Buffer.from('no front matter') }]),
    ).rejects.toMatchObject({ status: 400, param: 'files' });
    expect(blobs.keys.size).toBe(0);
  });

  it('stops resolving a reference past the budget before reading its zip', async () => {
    const blobs = memoryBlobs();
    const skills = new SkillsService({ store: memoryStore(), blobs, clock: new ManualClock() });
    const { skill } = await skills.create('p', [
      { name: 'big.zip', data: await zip('big', [{ path: 'x', data: Buffer.alloc(10_000, 'a') }]) },
    ]);
    blobs.opened = 0;
    await expect(
      skills.resolve('p', [{ type: 'skill_reference', skillId: skill.id }], {
        maxBytes: 5_000,
        over,
      }),
    ).rejects.toThrow(/over 100/);
    expect(blobs.opened).toBe(0);
  });

  it('stops an inline skill past the budget on its declared sizes', async () => {
    const skills = new SkillsService({
      store: memoryStore(),
      blobs: memoryBlobs(),
      clock: new ManualClock(),
    });
    const data = await zip('in', [{ path: 'x', data: Buffer.alloc(10_000, 'a') }]);
    await expect(
      skills.resolve('p', [{ type: 'inline', name: 'in', description: 'd', zip: data }], {
        maxBytes: 5_000,
        over,
      }),
    ).rejects.toThrow(/over budget/);
    const ok = await skills.resolve(
      'p',
      [{ type: 'inline', name: 'in', description: 'd', zip: data }],
      { maxBytes: 1_000_000, over },
    );
    expect(ok[0]).toMatchObject({ name: 'in', path: '/mnt/skills/in' });
    // A page a file plus a page a directory, plus room for the root.
    expect(skillsFootprint(ok).bytes).toBe(2 * 1024 * 1024);
  });
});
