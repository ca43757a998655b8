import { crc32, deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  BUNDLE_LIMITS,
  BundleError,
  bundleFromUpload,
  bundleFromZip,
  bundleToZip,
  parseFrontMatter,
  readZip,
  writeZip,
} from './index.js';

const SKILL_MD = '---\nname: csv-tools\ndescription: Reads CSV files.\n---\n# CSV tools\n';

interface RawEntry {
  name: string | Buffer;
  data?: Buffer;
  /** Deflate the data (method 8) instead of storing it. */
  deflate?: boolean;
  /** Unix mode in the external attributes (made by Unix). */
  mode?: number;
  flags?: number;
  /** Lie about the unpacked size in both headers. */
  declaredSize?: number;
}

/**
 * A zip built byte by byte, so the tests can make what no zip library would: lying sizes,
 * symlinks, devices, encrypted flags, duplicate names, broken directories.
 */
function rawZip(entries: RawEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = typeof e.name === 'string' ? Buffer.from(e.name) : e.name;
    const data = e.data ?? Buffer.alloc(0);
    const body = e.deflate ? deflateRawSync(data) : data;
    const size = e.declaredSize ?? data.length;
    const flags = (e.flags ?? 0) | (typeof e.name === 'string' ? 0x800 : 0);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(e.deflate ? 8 : 0, 8);
    local.writeUInt32LE(crc32(data), 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, body);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(e.deflate ? 8 : 0, 10);
    central.writeUInt32LE(crc32(data), 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((e.mode ?? 0o100644) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

const skill = (extra: RawEntry[] = []) =>
  rawZip([{ name: 'csv-tools/SKILL.md', data: Buffer.from(SKILL_MD) }, ...extra]);

async function refused(zip: Buffer, message: RegExp): Promise<void> {
  const error = await bundleFromZip(zip).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BundleError);
  expect((error as Error).message).toMatch(message);
}

describe('a skill bundle', () => {
  it('is read from a zip of a folder: name, description and files under the skill root', async () => {
    const bundle = await bundleFromZip(
      skill([
        { name: 'csv-tools/scripts/read.py', data: Buffer.from('print(1)\n'), mode: 0o100755 },
      ]),
    );
    expect(bundle.name).toBe('csv-tools');
    expect(bundle.description).toBe('Reads CSV files.');
    expect(bundle.files.map((f) => [f.path, f.executable])).toEqual([
      ['SKILL.md', false],
      ['scripts/read.py', true],
    ]);
    expect(bundle.bytes).toBe(SKILL_MD.length + 9);
  });

  it('round-trips through the canonical zip Berth stores', async () => {
    const bundle = await bundleFromZip(
      skill([{ name: 'csv-tools/data.txt', data: Buffer.alloc(5000, 'a'), deflate: true }]),
    );
    const again = await bundleFromZip(await bundleToZip(bundle));
    expect(again.files.map((f) => [f.path, f.data.length])).toEqual([
      ['SKILL.md', SKILL_MD.length],
      ['data.txt', 5000],
    ]);
  });

  it('is read from a directory upload of several files', async () => {
    const bundle = await bundleFromUpload([
      { name: 'csv-tools/SKILL.md', data: Buffer.from(SKILL_MD) },
      { name: 'csv-tools/notes/a.md', data: Buffer.from('a') },
    ]);
    expect(bundle.files.map((f) => f.path)).toEqual(['SKILL.md', 'notes/a.md']);
  });

  it('reads front matter with quotes and block scalars', () => {
    expect(
      parseFrontMatter("---\nname: \"x-y\"\ndescription: >\n  one\n  two\nother: 'it''s'\n---\n"),
    ).toEqual({ name: 'x-y', description: 'one two', other: "it's" });
  });

  it.each([
    ['no SKILL.md', rawZip([{ name: 'a.txt', data: Buffer.from('x') }]), /no SKILL\.md/],
    [
      'two SKILL.md',
      skill([{ name: 'csv-tools/sub/SKILL.md', data: Buffer.from(SKILL_MD) }]),
      /exactly one SKILL\.md/,
    ],
    [
      'SKILL.md not at the top',
      rawZip([
        { name: 'a/b/SKILL.md', data: Buffer.from(SKILL_MD) },
        { name: 'c.txt', data: Buffer.from('x') },
      ]),
      /at the top/,
    ],
    [
      'no front matter',
      rawZip([{ name: 'SKILL.md', data: Buffer.from('# hi\n') }]),
      /must start with front matter/,
    ],
    [
      'no description',
      rawZip([{ name: 'SKILL.md', data: Buffer.from('---\nname: a\n---\n') }]),
      /no `description`/,
    ],
    [
      'a name that is not a directory name',
      rawZip([{ name: 'SKILL.md', data: Buffer.from('---\nname: ../x\ndescription: d\n---\n') }]),
      /name "\.\.\/x" is refused/,
    ],
  ])('is refused with %s', async (_case, zip, message) => {
    await refused(zip, message);
  });
});

describe('a hostile zip is refused', () => {
  it('with an entry containing ..', async () => {
    await refused(
      skill([{ name: 'csv-tools/../../etc/passwd', data: Buffer.from('x') }]),
      /contains '\.\.'/,
    );
  });

  it('with an absolute path', async () => {
    await refused(skill([{ name: '/etc/cron.d/x', data: Buffer.from('x') }]), /absolute path/);
  });

  it('with a Windows drive path or a backslash', async () => {
    await refused(skill([{ name: 'C:/x', data: Buffer.from('x') }]), /absolute path/);
    await refused(skill([{ name: 'csv-tools\\..\\x', data: Buffer.from('x') }]), /backslash/);
  });

  it('with a symbolic link', async () => {
    await refused(
      skill([{ name: 'csv-tools/link', data: Buffer.from('/etc/passwd'), mode: 0o120777 }]),
      /symbolic link/,
    );
  });

  it('with a device file or a FIFO', async () => {
    await refused(skill([{ name: 'csv-tools/dev', mode: 0o020666 }]), /character device/);
    await refused(skill([{ name: 'csv-tools/blk', mode: 0o060666 }]), /block device/);
    await refused(skill([{ name: 'csv-tools/fifo', mode: 0o010666 }]), /FIFO/);
  });

  it('with a duplicate name', async () => {
    await refused(
      skill([
        { name: 'csv-tools/a.txt', data: Buffer.from('1') },
        { name: 'csv-tools/a.txt', data: Buffer.from('2') },
      ]),
      /more than once/,
    );
  });

  it('with a name that is both a file and a directory', async () => {
    await refused(
      skill([
        { name: 'csv-tools/a', data: Buffer.from('1') },
        { name: 'csv-tools/a/b', data: Buffer.from('2') },
      ]),
      /both as a file and as a directory/,
    );
  });

  it('with an encrypted entry', async () => {
    await refused(
      skill([{ name: 'csv-tools/secret', data: Buffer.from('x'), deflate: true, flags: 1 }]),
      /encrypted/,
    );
  });

  it('with a name that is not UTF-8', async () => {
    await refused(
      skill([{ name: Buffer.from([0x61, 0xff, 0xfe]), data: Buffer.from('x') }]),
      /not valid UTF-8/,
    );
  });

  it('that unpacks past its declared size (a lying zip bomb)', async () => {
    await refused(
      skill([
        { name: 'csv-tools/bomb', data: Buffer.alloc(100_000), deflate: true, declaredSize: 10 },
      ]),
      /bomb|past its declared size|too many bytes|corrupt/,
    );
  });

  it('that unpacks short of its declared size', async () => {
    await refused(
      skill([
        { name: 'csv-tools/short', data: Buffer.alloc(1000, 1), deflate: true, declaredSize: 2000 },
      ]),
      /corrupt|not the 2000/,
    );
  });

  it('with an entry that expands past the ratio limit', async () => {
    await refused(
      skill([{ name: 'csv-tools/zeros', data: Buffer.alloc(5 * 1024 * 1024), deflate: true }]),
      /expands more than 200:1/,
    );
  });

  it('with a declared file size past 25 MB', async () => {
    await refused(
      skill([
        {
          name: 'csv-tools/big',
          data: Buffer.alloc(10),
          deflate: true,
          declaredSize: 26 * 1024 * 1024,
        },
      ]),
      /at most 26214400/,
    );
  });

  it('with a declared total past the limit', async () => {
    const parts = Array.from({ length: 5 }, (_, i) => ({
      name: `csv-tools/f${i}`,
      data: Buffer.alloc(10),
      deflate: true,
      declaredSize: 24 * 1024 * 1024,
    }));
    await refused(skill(parts), /more than 104857600 bytes in total/);
  });

  it('with more than 500 files', async () => {
    const parts = Array.from({ length: 501 }, (_, i) => ({
      name: `csv-tools/f${i}`,
      data: Buffer.from('x'),
    }));
    await refused(skill(parts), /more than 500 files|at most 500/);
  });

  it('larger than 50 MB', async () => {
    await expect(
      readZip(Buffer.alloc(BUNDLE_LIMITS.maxZipBytes + 1), BUNDLE_LIMITS),
    ).rejects.toThrow(/larger than 52428800/);
  });

  it('with a malformed central directory', async () => {
    const zip = skill([{ name: 'csv-tools/a.txt', data: Buffer.from('x') }]);
    const cd = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    const broken = Buffer.from(zip);
    broken.writeUInt32LE(0xdeadbeef, cd);
    await refused(broken, /Malformed zip/);
  });

  it('whose stored entry declares sizes that disagree', async () => {
    await refused(
      skill([{ name: 'csv-tools/s', data: Buffer.alloc(10), declaredSize: 5000 }]),
      /Malformed zip.*size mismatch/,
    );
  });

  it('that is not a zip at all', async () => {
    await refused(Buffer.from('this is not a zip file, just text'), /Malformed zip/);
  });

  it('whose directory points past the end', async () => {
    const zip = skill();
    const truncated = Buffer.from(zip);
    // The end record's directory offset now points past the end of the file.
    truncated.writeUInt32LE(zip.length + 1000, zip.length - 6);
    await refused(truncated, /Malformed zip/);
  });
});

describe('writeZip', () => {
  it('writes what readZip reads back, executable bits included', async () => {
    const zip = await writeZip('r', [
      { path: 'SKILL.md', data: Buffer.from(SKILL_MD), executable: false },
      { path: 'run.sh', data: Buffer.from('#!/bin/sh\n'), executable: true },
    ]);
    const files = await readZip(zip, BUNDLE_LIMITS);
    expect(files.map((f) => [f.path, f.executable])).toEqual([
      ['r/SKILL.md', false],
      ['r/run.sh', true],
    ]);
  });
});
