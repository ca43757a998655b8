import { readdirSync } from 'node:fs';
import { BadRequestError, NotFoundError, toFile } from 'openai';
import { describe, expect } from 'vitest';
import { bundleFromZip, writeZip } from '@berth/skill-bundle';
import { berthTest } from './fixtures.js';

const skillMd = (name: string, description: string, body = '') =>
  Buffer.from(`---\nname: ${name}\ndescription: ${description}\n---\n# ${name}\n${body}`);

const zipOf = (name: string, description: string, extra: Record<string, string> = {}) =>
  writeZip(name, [
    { path: 'SKILL.md', data: skillMd(name, description), executable: false },
    ...Object.entries(extra).map(([path, text]) => ({
      path,
      data: Buffer.from(text),
      executable: false,
    })),
  ]);

async function zipFile(name: string, description: string, extra: Record<string, string> = {}) {
  return toFile(await zipOf(name, description, extra), `${name}.zip`, {
    type: 'application/zip',
  });
}

const it = berthTest()
  /** Rows and blobs the skills API keeps, to prove a refused upload keeps nothing. */
  .extend(
    'stored',
    { scope: 'file' },
    ({ berth }) =>
      async (): Promise<{ skills: number; versions: number; blobs: number }> => {
        const { rows } = await berth.pool.query<{ s: number; v: number }>(
          'select (select count(*)::int from skills) as s, (select count(*)::int from skill_versions) as v',
        );
        let blobs = 0;
        try {
          blobs = readdirSync(`${berth.dataDir}/skills`).length;
        } catch {
          blobs = 0;
        }
        return { skills: rows[0]!.s, versions: rows[0]!.v, blobs };
      },
  );

describe('/v1/skills with the official SDK', () => {
  it('creates a skill from one zip, then retrieves, lists, downloads and deletes it', async ({
    berth,
  }) => {
    const skill = await berth.client.skills.create({
      files: await zipFile('csv-tools', 'Reads CSV files.', { 'scripts/read.py': 'print(1)\n' }),
    });
    expect(skill).toEqual({
      id: expect.stringMatching(/^skill_[0-9a-f]{32}$/),
      object: 'skill',
      name: 'csv-tools',
      description: 'Reads CSV files.',
      created_at: expect.any(Number),
      default_version: '1',
      latest_version: '1',
    });
    expect(await berth.client.skills.retrieve(skill.id)).toEqual(skill);
    const listed = [];
    for await (const s of berth.client.skills.list()) listed.push(s.id);
    expect(listed).toContain(skill.id);

    const content = await berth.client.skills.content.retrieve(skill.id);
    expect(content.headers.get('content-type')).toBe('application/zip');
    const bundle = await bundleFromZip(Buffer.from(await content.arrayBuffer()));
    expect(bundle.files.map((f) => f.path).sort()).toEqual(['SKILL.md', 'scripts/read.py']);

    expect(await berth.client.skills.delete(skill.id)).toEqual({
      id: skill.id,
      object: 'skill.deleted',
      deleted: true,
    });
    await expect(berth.client.skills.retrieve(skill.id)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('creates a skill from a directory upload of several files', async ({ berth }) => {
    // The Node SDK sends each file under its base name only.
    const skill = await berth.client.skills.create({
      files: [
        await toFile(skillMd('dir-skill', 'From a folder.'), 'dir-skill/SKILL.md'),
        await toFile(Buffer.from('hello'), 'dir-skill/notes/hello.txt'),
      ],
    });
    expect(skill.name).toBe('dir-skill');
    const content = await berth.client.skills.content.retrieve(skill.id);
    const bundle = await bundleFromZip(Buffer.from(await content.arrayBuffer()));
    expect(bundle.files.map((f) => f.path).sort()).toEqual(['SKILL.md', 'hello.txt']);

    // A client that sends relative paths (as browsers do for a folder) keeps the tree.
    const form = new FormData();
    form.append('files[]', new Blob([skillMd('tree-skill', 'A tree.')]), 'tree-skill/SKILL.md');
    form.append('files[]', new Blob(['hello']), 'tree-skill/notes/hello.txt');
    const res = await berth.api('/v1/skills', { method: 'POST', body: form });
    expect(res.status).toBe(200);
    const tree = (await res.json()) as { id: string };
    const treeZip = await berth.client.skills.content.retrieve(tree.id);
    const treeBundle = await bundleFromZip(Buffer.from(await treeZip.arrayBuffer()));
    expect(treeBundle.files.map((f) => f.path).sort()).toEqual(['SKILL.md', 'notes/hello.txt']);
  });

  it('pages skills with after/limit/order (keyset)', async ({ berth }) => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push((await berth.client.skills.create({ files: await zipFile(`page-${i}`, 'p') })).id);
    const first = await berth.client.skills.list({ limit: 2, order: 'asc' });
    expect(first.data).toHaveLength(2);
    expect(first.has_more).toBe(true);
    const all: string[] = [];
    for await (const s of berth.client.skills.list({ limit: 1, order: 'asc' })) all.push(s.id);
    for (const id of ids) expect(all).toContain(id);
    expect(new Set(all).size).toBe(all.length);
  });

  it('versions: create, list, retrieve, set default, content and delete', async ({ berth }) => {
    const skill = await berth.client.skills.create({ files: await zipFile('vers', 'one') });
    const v2 = await berth.client.skills.versions.create(skill.id, {
      files: await zipFile('vers', 'two'),
    });
    expect(v2).toEqual({
      id: expect.stringMatching(/^skillver_[0-9a-f]{32}$/),
      object: 'skill.version',
      skill_id: skill.id,
      version: '2',
      name: 'vers',
      description: 'two',
      created_at: expect.any(Number),
    });
    // Not made default unless asked.
    expect(await berth.client.skills.retrieve(skill.id)).toMatchObject({
      default_version: '1',
      latest_version: '2',
      description: 'one',
    });
    const v3 = await berth.client.skills.versions.create(skill.id, {
      files: await zipFile('vers', 'three'),
      default: true,
    });
    expect(await berth.client.skills.retrieve(skill.id)).toMatchObject({
      default_version: '3',
      latest_version: '3',
      description: 'three',
    });

    const desc = [];
    for await (const v of berth.client.skills.versions.list(skill.id, { limit: 1 }))
      desc.push(v.version);
    expect(desc).toEqual(['3', '2', '1']);
    const asc = await berth.client.skills.versions.list(skill.id, { order: 'asc' });
    expect(asc.data.map((v) => v.version)).toEqual(['1', '2', '3']);

    expect(await berth.client.skills.versions.retrieve('2', { skill_id: skill.id })).toEqual(v2);
    const content = await berth.client.skills.versions.content.retrieve('2', {
      skill_id: skill.id,
    });
    const bundle = await bundleFromZip(Buffer.from(await content.arrayBuffer()));
    expect(bundle.description).toBe('two');

    const updated = await berth.client.skills.update(skill.id, { default_version: '2' });
    expect(updated).toMatchObject({ default_version: '2', description: 'two' });
    await expect(
      berth.client.skills.update(skill.id, { default_version: '9' }),
    ).rejects.toMatchObject({ status: 400, param: 'default_version' });

    // The default can't be deleted; another can, and the latest follows.
    await expect(
      berth.client.skills.versions.delete('2', { skill_id: skill.id }),
    ).rejects.toBeInstanceOf(BadRequestError);
    expect(await berth.client.skills.versions.delete('3', { skill_id: skill.id })).toEqual({
      id: v3.id,
      object: 'skill.version.deleted',
      deleted: true,
      version: '3',
    });
    expect(await berth.client.skills.retrieve(skill.id)).toMatchObject({ latest_version: '2' });
    await expect(
      berth.client.skills.versions.retrieve('3', { skill_id: skill.id }),
    ).rejects.toBeInstanceOf(NotFoundError);
    // Numbers are never reused.
    const v4 = await berth.client.skills.versions.create(skill.id, {
      files: await zipFile('vers', 'four'),
    });
    expect(v4.version).toBe('4');
  });

  it('is project-scoped: another project sees 404', async ({ berth }) => {
    const skill = await berth.client.skills.create({ files: await zipFile('mine', 'm') });
    const other = await berth.newProjectClient();
    await expect(other.client.skills.retrieve(skill.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(other.client.skills.delete(skill.id)).rejects.toBeInstanceOf(NotFoundError);
    const page = await other.client.skills.list();
    expect(page.data.map((s) => s.id)).not.toContain(skill.id);
  });

  it('refuses a hostile or invalid bundle with a 400 naming the problem, keeping nothing', async ({
    berth,
    stored,
  }) => {
    const before = await stored();
    await expect(
      berth.client.skills.create({
        files: await toFile(Buffer.from('# no front matter'), 'x/SKILL.md'),
      }),
    ).rejects.toMatchObject({
      status: 400,
      param: 'files',
      message: expect.stringMatching(/front matter/),
    });
    await expect(
      berth.client.skills.create({
        files: await toFile(Buffer.from('PK\x03\x04garbage'), 'a.zip'),
      }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/Malformed zip/) });
    const form = new FormData();
    form.append('files', new Blob([skillMd('t', 'd')]), 'SKILL.md');
    form.append('files', new Blob(['x']), '../escape.txt');
    const res = await berth.api('/v1/skills', { method: 'POST', body: form });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
      /"\.\.\/escape\.txt" is refused: it contains '\.\.'/,
    );
    await expect(berth.client.skills.create({})).rejects.toMatchObject({ status: 400 });
    expect(await stored()).toEqual(before);
  });

  it('refuses more than 500 files, a part under another name, and a body that is not multipart', async ({
    berth,
    stored,
  }) => {
    const before = await stored();
    const form = new FormData();
    form.append('files[]', new Blob([skillMd('many', 'm')]), 'SKILL.md');
    for (let i = 0; i < 500; i++) form.append('files[]', new Blob(['x']), `f${i}.txt`);
    const many = await berth.api('/v1/skills', { method: 'POST', body: form });
    expect(many.status).toBe(400);
    expect(((await many.json()) as { error: { param: string } }).error.param).toBe('files');

    const other = new FormData();
    other.append('file', new Blob([skillMd('x', 'y')]), 'SKILL.md');
    const wrong = await berth.api('/v1/skills', { method: 'POST', body: other });
    expect(wrong.status).toBe(400);
    expect(((await wrong.json()) as { error: { param: string } }).error.param).toBe('file');

    const json = await berth.api('/v1/skills', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(json.status).toBe(400);
    expect(await stored()).toEqual(before);
  });

  it('is described in /v1/openapi.json', async ({ berth }) => {
    const doc = (await (await fetch(`${berth.url}/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> } }>>;
    };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/skills',
        '/skills/{skill_id}',
        '/skills/{skill_id}/content',
        '/skills/{skill_id}/versions',
        '/skills/{skill_id}/versions/{version}',
        '/skills/{skill_id}/versions/{version}/content',
      ]),
    );
    expect(Object.keys(doc.paths['/skills']!.post!.requestBody!.content)).toEqual([
      'multipart/form-data',
    ]);
  });
});
