import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** `docker compose` (v2) when present, else Debian's `docker-compose` (v1), which provisioning installs. */
function compose(args: string[], env: Record<string, string>): string {
  const opts = {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8' as const,
    stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'],
  };
  try {
    execFileSync('docker', ['compose', 'version'], { stdio: 'ignore' });
    return execFileSync('docker', ['compose', '-f', 'docker-compose.yml', ...args], opts);
  } catch {
    return execFileSync('docker-compose', ['-f', 'docker-compose.yml', ...args], opts);
  }
}

describe('docker-compose.yml', () => {
  it('is valid, and wires the API to Postgres and the Docker socket', () => {
    const config = compose(['config'], { BERTH_BOOTSTRAP_API_KEY: 'compose-validation-key-0001' });
    expect(config).toMatch(/postgres:\/\/berth:berth@postgres:5432\/berth/);
    expect(config).toMatch(/\/var\/run\/docker\.sock:\/var\/run\/docker\.sock/);
    expect(config).toMatch(/condition: service_healthy/);
    expect(config).toMatch(/127\.0\.0\.1/);
  });

  it('refuses to start without a bootstrap key instead of running with a default one', () => {
    expect(() => compose(['config', '-q'], { BERTH_BOOTSTRAP_API_KEY: '' })).toThrow(
      /BERTH_BOOTSTRAP_API_KEY/,
    );
  });
});
