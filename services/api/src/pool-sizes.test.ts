import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { parsePoolSizes, poolEntries } from './pool-sizes.js';

describe('BERTH_POOL_SIZES', () => {
  it('sizes pools per memory limit and network policy; a bare limit is its disabled pool', () => {
    expect(parsePoolSizes('1g=2, 1g/allowlist=1,4g/disabled=3,16g=0')).toEqual({
      disabled: { '1g': 2, '4g': 3 },
      allowlist: { '1g': 1 },
    });
    expect(poolEntries(parsePoolSizes('1g/allowlist=1,1g=2'))).toEqual([
      ['disabled', '1g', 2],
      ['allowlist', '1g', 1],
    ]);
    expect(parsePoolSizes('0')).toEqual({});
  });

  it('defaults to a small pool of each network policy for 1g', () => {
    const config = loadConfig({ NODE_ENV: 'test', DATABASE_URL: 'postgres://127.0.0.1:1/none' });
    expect(parsePoolSizes(config.BERTH_POOL_SIZES)).toEqual({
      disabled: { '1g': 2 },
      allowlist: { '1g': 1 },
    });
  });

  it.each([
    ['2g=1', "'2g=1' is not LIMIT=COUNT or LIMIT/NETWORK=COUNT with LIMIT one of 1g, 4g, 16g, 64g"],
    ['1g/open=1', "'1g/open=1': the network must be one of disabled, allowlist"],
    ['1g=1,1g/disabled=2', "'1g/disabled=2': the pool 1g/disabled is sized twice"],
    ['1g/allowlist', "'1g/allowlist' is not LIMIT=COUNT or LIMIT/NETWORK=COUNT"],
  ])('refuses %s, saying why', (value, message) => {
    expect(() => parsePoolSizes(value)).toThrow(message);
    expect(() =>
      loadConfig({
        NODE_ENV: 'test',
        DATABASE_URL: 'postgres://127.0.0.1:1/none',
        BERTH_POOL_SIZES: value,
      }),
    ).toThrow(/BERTH_POOL_SIZES/);
  });
});
