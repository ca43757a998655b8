import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect } from 'vitest';
import { berthTest } from './fixtures.js';

const { version } = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
) as { version: string };
const head = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8' }).trim();

const it = berthTest({ BERTH_METRICS_TOKEN: 'metrics-token-for-the-build-info-test' });

describe('the running build', () => {
  it('is named by /healthz: the API package version and the commit it was built from', async ({
    berth,
  }) => {
    const res = await fetch(`${berth.url}/healthz`);
    expect(await res.json()).toEqual({ status: 'ok', version, commit: head });
  });

  it('is on every response as x-berth-version: probes, API calls, errors, unknown routes', async ({
    berth,
  }) => {
    const responses = await Promise.all([
      fetch(`${berth.url}/healthz`),
      fetch(`${berth.url}/readyz`),
      berth.api('/v1/containers'),
      fetch(`${berth.url}/v1/containers`),
      berth.api('/v1/containers/cntr_nope'),
      fetch(`${berth.url}/nowhere`),
    ]);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 401, 404, 404]);
    for (const res of responses) expect(res.headers.get('x-berth-version')).toBe(version);
  });

  it('is the berth_build_info metric', async ({ berth }) => {
    const scraped = await (
      await fetch(`${berth.url}/metrics`, {
        headers: { authorization: 'Bearer metrics-token-for-the-build-info-test' },
      })
    ).text();
    expect(scraped).toContain(`berth_build_info{version="${version}",commit="${head}"} 1`);
  });
});
