import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '@berth/core';
import { createPool } from '@berth/db';
import { compose, dockerClient } from './compose.js';
import { loadConfig } from './config.js';

/** Nothing answers at either address: building the graph must not try them. */
function build(role: string) {
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: 'postgres://berth:berth@127.0.0.1:1/none',
    BERTH_DOCKER_SOCKET: '/nonexistent/docker.sock',
    BERTH_ROLE: role,
  });
  const pool = createPool(config.DATABASE_URL!, { max: 1 });
  const berth = compose({
    config,
    logger: pino({ level: 'silent' }),
    clock: new ManualClock(),
    pool,
    docker: dockerClient(config),
    bootstrap: null,
  });
  return { berth, pool };
}

describe('compose', () => {
  it.each([
    [
      'all',
      [
        'event-log',
        'exec-standbys',
        'egress-proxy',
        'egress-sync',
        'reconciler',
        'reaper',
        'http',
        'pool-filler',
      ],
    ],
    ['api', ['event-log', 'exec-standbys', 'egress-proxy', 'egress-sync', 'http', 'pool-filler']],
    ['reaper', ['event-log', 'reconciler', 'reaper']],
  ])('builds the %s role without I/O, services in start order', async (role, names) => {
    const { berth, pool } = build(role);
    try {
      expect(berth.services.map((s) => s.name)).toEqual(names);
      expect(berth.http === null).toBe(role === 'reaper');
      expect(berth.reaper === null).toBe(role === 'api');
      expect(pool.totalCount).toBe(0);
    } finally {
      await pool.end();
    }
  });
});
