import { describe, expect, it } from 'vitest';
import { compose } from './compose-cli.js';

describe('docker-compose.yml', () => {
  it('is valid, and wires the API to Postgres and the Docker socket', () => {
    const config = compose(['config'], { BERTH_BOOTSTRAP_API_KEY: 'compose-validation-key-0001' });
    expect(config).toMatch(/postgres:\/\/berth:berth@postgres:5432\/berth/);
    expect(config).toMatch(/\/var\/run\/docker\.sock:\/var\/run\/docker\.sock/);
    expect(config).toMatch(/condition: service_healthy/);
    expect(config).toMatch(/127\.0\.0\.1/);
  });

  it("keeps the API's data directory on a named volume, so a recreated container finds its files", () => {
    const config = compose(['config'], { BERTH_BOOTSTRAP_API_KEY: 'compose-validation-key-0001' });
    expect(config).toMatch(/BERTH_DATA_DIR: \/var\/lib\/berth/);
    // compose v1 prints the short syntax, v2 the long one.
    expect(config).toMatch(
      /berth-data:\/var\/lib\/berth|source: berth-data\s+target: \/var\/lib\/berth/,
    );
    expect(config).toMatch(/^volumes:\n(?:\s.*\n)*\s+berth-data:/m);
  });

  it('mounts the egress directory at its own host path, sets it, and adds the socket group', () => {
    const config = compose(['config'], {
      BERTH_BOOTSTRAP_API_KEY: 'compose-validation-key-0001',
      BERTH_EGRESS_DIR: '/srv/berth-egress-check',
      BERTH_DOCKER_GID: '4242',
    });
    expect(config).toMatch(/BERTH_EGRESS_DIR: \/srv\/berth-egress-check/);
    expect(config).toMatch(
      /\/srv\/berth-egress-check:\/srv\/berth-egress-check|source: \/srv\/berth-egress-check\s+target: \/srv\/berth-egress-check/,
    );
    expect(config).toMatch(/group_add:\n\s+- '?4242'?/);
  });

  it('refuses to start without a bootstrap key instead of running with a default one', () => {
    expect(() => compose(['config', '-q'], { BERTH_BOOTSTRAP_API_KEY: '' })).toThrow(
      /BERTH_BOOTSTRAP_API_KEY/,
    );
  });
});
