import type { DockerClient } from './docker-client.js';
import { statusOf } from './docker-errors.js';

export interface DevPostgresOptions {
  /** The process's Docker client (its deadlines apply). */
  client: DockerClient;
  image: string;
  /** Container name; the data volume is `<name>-data`. */
  name: string;
  user?: string;
  password?: string;
  database?: string;
  log?: (message: string) => void;
}

const ROLE_LABEL = 'org.berth.role';

/**
 * For the start command on a developer machine: a labelled Postgres container with a named volume,
 * published on loopback only, created on first use and reused (started again if stopped) after.
 * Returns its connection URL. Not for production: the password is a fixed development one.
 */
export async function ensureDevPostgres(options: DevPostgresOptions): Promise<string> {
  const { client, image, name, log = () => {} } = options;
  const docker = client.docker;
  const user = options.user ?? 'berth';
  const password = options.password ?? 'berth-dev';
  const database = options.database ?? 'berth';
  const container = docker.getContainer(name);

  const inspect = () =>
    client.call('inspect', (abortSignal) => container.inspect({ abortSignal } as object));
  let info = await inspect().catch((error: unknown) => {
    if (statusOf(error) === 404) return null;
    throw error;
  });
  if (!info) {
    log(`starting a local Postgres: container ${name}, volume ${name}-data, image ${image}`);
    await client.call('create', () =>
      docker.createContainer({
        name,
        Image: image,
        Env: [`POSTGRES_USER=${user}`, `POSTGRES_PASSWORD=${password}`, `POSTGRES_DB=${database}`],
        Labels: { [ROLE_LABEL]: 'dev-postgres', 'org.berth.managed-by': 'berth' },
        ExposedPorts: { '5432/tcp': {} },
        HostConfig: {
          PortBindings: { '5432/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
          Mounts: [{ Type: 'volume', Source: `${name}-data`, Target: '/var/lib/postgresql/data' }],
          RestartPolicy: { Name: 'unless-stopped' },
        },
      }),
    );
    info = await inspect();
  } else {
    log(`reusing the local Postgres container ${name}`);
  }
  if (!info.State.Running) {
    await client.call('start', () => container.start());
    info = await inspect();
  }
  const port = info.NetworkSettings.Ports['5432/tcp']?.[0]?.HostPort;
  if (!port) throw new Error(`Postgres container ${name} publishes no port`);
  return `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
}
