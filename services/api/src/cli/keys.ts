/**
 * API keys: `pnpm keys create <project> [--name NAME]`, `pnpm keys create --admin [--name NAME]`
 * (an operator's key: reads /v1/admin across projects, belongs to none), `pnpm keys list`,
 * `pnpm keys revoke <key id>`. Uses the same configuration as the service (DATABASE_URL, or
 * the local development Postgres). A key is printed once, at creation; only its hash is stored.
 */
import { generateApiKey } from '@berth/core';
import { PgAdminStore, PgApiKeyStore } from '@berth/db';
import { loadConfig } from '../config.js';
import { openDatabase } from '../database.js';
import { dockerClient } from '../compose.js';

const usage =
  'usage: pnpm keys create <project> [--name NAME] | create --admin [--name NAME] | list | revoke <key id>';

async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || !['create', 'list', 'revoke'].includes(command)) {
    console.error(usage);
    return 2;
  }
  const config = loadConfig();
  const pool = await openDatabase(config, {
    applicationName: 'berth-keys',
    docker: dockerClient(config),
    max: 2,
  });
  try {
    const keys = new PgApiKeyStore(pool);
    if (command === 'create' && rest.includes('--admin')) {
      const nameAt = rest.indexOf('--name');
      const name = nameAt >= 0 ? (rest[nameAt + 1] ?? 'admin') : 'admin';
      const { key, prefix, hash } = generateApiKey();
      const record = await new PgAdminStore(pool).createAdminKey({ name, prefix, hash });
      console.log(JSON.stringify({ id: record.id, admin: true, name, key }, null, 2));
      console.error('Store this key now: it is not shown again.');
    } else if (command === 'create') {
      const project = rest[0];
      if (!project || project.startsWith('--')) {
        console.error(usage);
        return 2;
      }
      const nameAt = rest.indexOf('--name');
      const name = nameAt >= 0 ? (rest[nameAt + 1] ?? 'key') : 'key';
      const projectId = await keys.ensureProject(project);
      const { key, prefix, hash } = generateApiKey();
      const record = await keys.create({ projectId, name, prefix, hash });
      console.log(
        JSON.stringify({ id: record.id, project, project_id: projectId, name, key }, null, 2),
      );
      console.error('Store this key now: it is not shown again.');
    } else if (command === 'list') {
      for (const k of await keys.list()) {
        console.log(
          `${k.id}\t${k.projectId ?? '(admin)'}\t${k.prefix}…\t${k.name}\t${k.createdAt.toISOString()}\t${k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : 'active'}`,
        );
      }
    } else {
      const id = rest[0];
      if (!id) {
        console.error(usage);
        return 2;
      }
      const revoked = await keys.revoke(id);
      console.log(revoked ? `revoked ${id}` : `no active key ${id}`);
      return revoked ? 0 : 1;
    }
    return 0;
  } finally {
    await pool.end();
  }
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error((error as Error).message);
    process.exit(1);
  },
);
