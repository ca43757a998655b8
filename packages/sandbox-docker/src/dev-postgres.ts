import Dockerode from 'dockerode';

export interface DevPostgresOptions {
  /** Docker Engine socket; default /var/run/docker.sock. */
  socketPath?: string;
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
  const docker = new Dockerode(options.socketPath ? { socketPath: options.socketPath } : {});
  const { image, name, log = () => {} } = options;
  const user = options.user ?? 'berth';
  const password = options.password ?? 'berth-dev';
  const database = options.database ?? 'berth';
  const container = docker.getContainer(name);

  let info = await container.inspect().catch((error: { statusCode?: number }) => {
    if (error.statusCode === 404) return null;
    throw error;
  });
  if (!info) {
    log(`starting a local Postgres: container ${name}, volume ${name}-data, image ${image}`);
    await docker.createContainer({
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
    });
    info = await container.inspect();
  } else {
    log(`reusing the local Postgres container ${name}`);
  }
  if (!info.State.Running) {
    await container.start();
    info = await container.inspect();
  }
  const port = info.NetworkSettings.Ports['5432/tcp']?.[0]?.HostPort;
  if (!port) throw new Error(`Postgres container ${name} publishes no port`);
  return `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
}
