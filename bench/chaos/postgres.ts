import { setTimeout as sleep } from 'node:timers/promises';
import type Dockerode from 'dockerode';
import pg from 'pg';

export interface ChaosPostgres {
  url: string;
  container: Dockerode.Container;
  /** Restarts Postgres; it answers again before this returns. */
  restart(): Promise<void>;
}

/**
 * Postgres on the chaos engine, on a loopback port of the host network (the engine has no
 * bridge). `always` brings it back after the engine restarts; its data is on a volume, so it
 * survives both restarts.
 */
export async function startChaosPostgres(
  docker: Dockerode,
  options: { image: string; port: number; runId: string },
): Promise<ChaosPostgres> {
  const container = await docker.createContainer({
    name: `berth-chaos-postgres-${options.runId}`,
    Image: options.image,
    Env: ['POSTGRES_USER=chaos', 'POSTGRES_PASSWORD=chaos', 'POSTGRES_DB=chaos'],
    Cmd: [
      'postgres',
      '-c',
      'listen_addresses=127.0.0.1',
      '-p',
      String(options.port),
      // A killed process loses nothing with fsync off; only a machine crash would.
      '-c',
      'fsync=off',
      '-c',
      'max_connections=200',
    ],
    Labels: { 'org.berth.chaos': options.runId },
    HostConfig: { NetworkMode: 'host', RestartPolicy: { Name: 'always' } },
  });
  await container.start();
  const url = `postgres://chaos:chaos@127.0.0.1:${options.port}/chaos`;
  await waitForPostgres(url, 120_000);
  return {
    url,
    container,
    async restart() {
      await container.restart({ t: 2 });
      await waitForPostgres(url, 120_000);
    },
  };
}

export async function waitForPostgres(url: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    try {
      await client.connect();
      await client.query('select 1');
      await client.end();
      return;
    } catch (error) {
      await client.end().catch(() => {});
      if (Date.now() > deadline) throw error;
      await sleep(250);
    }
  }
}
