import { toFile } from 'openai';
import { describe, expect } from 'vitest';
import { writeZip } from '@berth/skill-bundle';
import { berthTest, okJson, type RunningBerth } from './fixtures.js';

const skillMd = (name: string, description: string) =>
  `---\nname: ${name}\ndescription: ${description}\n---\n# ${name}\nUse me.\n`;

const zipOf = (name: string, description: string, extra: { path: string; data: Buffer }[] = []) =>
  writeZip(name, [
    { path: 'SKILL.md', data: Buffer.from(skillMd(name, description)), executable: false },
    ...extra.map((f) => ({ ...f, executable: false })),
  ]);

interface ExecResult {
  exit_code: number;
  stdout: string;
  stderr: string;
}

type WithSkills = { skills?: { name: string; description: string; path: string }[] };

/** An exec that must answer 200, and what a test left behind: rows and sandboxes. */
function skillCalls(berth: RunningBerth) {
  return {
    sh: async (containerId: string, command: string) =>
      okJson<ExecResult>(
        await berth.postJson(`/v1/containers/${containerId}/exec`, { command }),
        'exec',
      ),
    async leftBehind(): Promise<{ rows: number; sandboxes: number }> {
      const { rows } = await berth.pool.query<{ n: number }>(
        'select count(*)::int as n from containers',
      );
      return { rows: rows[0]!.n, sandboxes: (await berth.runtime.listManaged()).length };
    },
  };
}

// Inline skills arrive base64 in the JSON body: room for the many-skills case below.
const it = berthTest({ BERTH_MAX_JSON_BYTES: String(16 * 1024 * 1024) }).extend(
  'calls',
  { scope: 'file' },
  ({ berth }) => skillCalls(berth),
);

// Each case creates real sandboxes; on a loaded machine that takes a while.
describe('skills at container create', () => {
  it('places a referenced and an inline skill read-only under /mnt/skills/<name>', async ({
    berth,
    calls,
  }) => {
    const skill = await berth.client.skills.create({
      files: await toFile(await zipOf('csv-tools', 'Reads CSV files.'), 'csv-tools.zip'),
    });
    const inline = await zipOf('inline-notes', 'Inline notes.', [
      { path: 'docs/guide.md', data: Buffer.from('guide\n') },
    ]);
    const container = await berth.client.containers.create({
      name: 'with-skills',
      skills: [
        { type: 'skill_reference', skill_id: skill.id },
        {
          type: 'inline',
          name: 'inline-notes',
          description: 'Inline notes.',
          source: {
            type: 'base64',
            media_type: 'application/zip',
            data: inline.toString('base64'),
          },
        },
      ],
    });
    const expected = [
      { name: 'csv-tools', description: 'Reads CSV files.', path: '/mnt/skills/csv-tools' },
      { name: 'inline-notes', description: 'Inline notes.', path: '/mnt/skills/inline-notes' },
    ];
    expect((container as WithSkills).skills).toEqual(expected);
    expect(((await berth.client.containers.retrieve(container.id)) as WithSkills).skills).toEqual(
      expected,
    );
    const listed = await berth.client.containers.list();
    expect((listed.data.find((c) => c.id === container.id) as WithSkills).skills).toEqual(expected);

    const read = await calls.sh(
      container.id,
      'cat /mnt/skills/csv-tools/SKILL.md && cat /mnt/skills/inline-notes/SKILL.md /mnt/skills/inline-notes/docs/guide.md',
    );
    expect(read.exit_code).toBe(0);
    expect(read.stdout).toBe(
      skillMd('csv-tools', 'Reads CSV files.') +
        skillMd('inline-notes', 'Inline notes.') +
        'guide\n',
    );

    // The sandbox user can't change a thing: not the files, not the directories, not the modes.
    const attempts = [
      'echo x >> /mnt/skills/csv-tools/SKILL.md',
      'echo x > /mnt/skills/csv-tools/SKILL.md',
      'rm -f /mnt/skills/csv-tools/SKILL.md',
      'mv /mnt/skills/csv-tools/SKILL.md /mnt/skills/csv-tools/x',
      'touch /mnt/skills/csv-tools/new',
      'mkdir /mnt/skills/mine',
      'chmod u+w /mnt/skills/csv-tools/SKILL.md',
      'rm -rf /mnt/skills/inline-notes/docs',
    ];
    for (const attempt of attempts) {
      const r = await calls.sh(container.id, `${attempt} 2>/dev/null; echo $?`);
      expect(r.stdout.trim(), attempt).not.toBe('0');
    }
    const after = await calls.sh(
      container.id,
      'cat /mnt/skills/csv-tools/SKILL.md; ls /mnt/skills; stat -c "%u %a" /mnt/skills /mnt/skills/csv-tools /mnt/skills/csv-tools/SKILL.md; id -u',
    );
    const lines = after.stdout.trim().split('\n');
    expect(after.stdout.startsWith(skillMd('csv-tools', 'Reads CSV files.'))).toBe(true);
    expect(lines.slice(-6)).toEqual([
      'csv-tools',
      'inline-notes',
      '0 555',
      '0 555',
      '0 444',
      expect.not.stringMatching(/^0$/),
    ]);
    await berth.client.containers.delete(container.id);
  }, 180_000);

  it('resolves a version given as an integer, "latest", or omitted (the default)', async ({
    berth,
    calls,
  }) => {
    const skill = await berth.client.skills.create({
      files: await toFile(await zipOf('ver', 'one'), 'ver.zip'),
    });
    await berth.client.skills.versions.create(skill.id, {
      files: await toFile(await zipOf('ver', 'two'), 'ver.zip'),
    });
    const cases: [string | number | undefined, string][] = [
      [undefined, 'one'],
      [1, 'one'],
      ['2', 'two'],
      ['latest', 'two'],
    ];
    for (const [version, description] of cases) {
      const res = await berth.postJson('/v1/containers', {
        name: 'v',
        skills: [
          {
            type: 'skill_reference',
            skill_id: skill.id,
            ...(version !== undefined ? { version } : {}),
          },
        ],
      });
      const body = (await res.json()) as { id: string } & WithSkills;
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(body.skills?.[0]?.description).toBe(description);
      const md = await calls.sh(body.id, 'cat /mnt/skills/ver/SKILL.md');
      expect(md.stdout).toBe(skillMd('ver', description));
      await berth.client.containers.delete(body.id);
    }
  }, 180_000);

  it('refuses bad skills with a 400 naming the param, before anything is created', async ({
    berth,
    calls,
  }) => {
    const before = await calls.leftBehind();
    const post = async (skills: unknown[], memory_limit?: string) => {
      const res = await berth.postJson('/v1/containers', {
        name: 'bad',
        skills,
        ...(memory_limit ? { memory_limit } : {}),
      });
      return {
        status: res.status,
        error: ((await res.json()) as { error: { param: string; message: string } }).error,
      };
    };
    const inline = (name: string, data: string) => ({
      type: 'inline',
      name,
      description: 'd',
      source: { type: 'base64', media_type: 'application/zip', data },
    });
    expect(
      await post([{ type: 'skill_reference', skill_id: 'skill_00000000000000000000000000000000' }]),
    ).toMatchObject({ status: 400, error: { param: 'skills.0.skill_id' } });
    const skill = await berth.client.skills.create({
      files: await toFile(await zipOf('known', 'k'), 'known.zip'),
    });
    expect(
      await post([{ type: 'skill_reference', skill_id: skill.id, version: '7' }]),
    ).toMatchObject({ status: 400, error: { param: 'skills.0.version' } });
    expect(await post([inline('x', 'not base64!')])).toMatchObject({
      status: 400,
      error: { param: 'skills.0.source.data' },
    });
    expect(
      await post([inline('x', Buffer.from('PK\x03\x04 nope').toString('base64'))]),
    ).toMatchObject({
      status: 400,
      error: { param: 'skills.0.source.data', message: expect.stringMatching(/Malformed zip/) },
    });
    const good = (await zipOf('dup', 'd')).toString('base64');
    expect(await post([inline('dup', good), inline('dup', good)])).toMatchObject({
      status: 400,
      error: { param: 'skills.1' },
    });
    expect(await post(Array.from({ length: 201 }, (_, i) => inline(`s${i}`, good)))).toMatchObject({
      status: 400,
      error: { param: 'skills' },
    });

    // Six skills of one 24 MiB file each (sparse, so it packs to under 1 MiB at a ratio well
    // below the bomb limit): past the 128 MiB a 1g sandbox gives its skills. The sixth is judged
    // on its declared size, before it is inflated.
    const sparse = Buffer.alloc(24 * 1024 * 1024);
    for (let i = 0; i < sparse.length; i += 64) sparse[i] = (i * 2654435761) >>> 24;
    const big = (await zipOf('big', 'b', [{ path: 'data.bin', data: sparse }])).toString('base64');
    const tooBig = await post(Array.from({ length: 6 }, (_, i) => inline(`big${i}`, big)));
    expect(tooBig).toMatchObject({ status: 400, error: { param: 'skills' } });
    expect(tooBig.error.message).toMatch(/at most 134217728/);

    expect(await calls.leftBehind()).toEqual(before);
  }, 180_000);
});
