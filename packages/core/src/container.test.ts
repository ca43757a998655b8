import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.js';
import { aContainer } from '@berth/testkit/fakes';
import { expiresAt, isExpiredAt, memoryLimitBytes, visibleStatus } from './container.js';

/** A running record active at 2026-01-01T00:00Z, expiring after 20 minutes. */
const base = aContainer;

describe('expiry', () => {
  it('is anchored on last_active_at plus minutes, and inclusive at the boundary', () => {
    const c = base({ expiresAfterMinutes: 1 });
    const clock = new ManualClock(c.lastActiveAt);
    clock.advance(59_999);
    expect(isExpiredAt(c, clock.now())).toBe(false);
    clock.advance(1);
    expect(isExpiredAt(c, clock.now())).toBe(true);
    expect(expiresAt(c).getTime() - c.lastActiveAt.getTime()).toBe(60_000);
  });

  it('handles the largest setting', () => {
    const c = base({ expiresAfterMinutes: 1440 });
    expect(isExpiredAt(c, new Date(c.lastActiveAt.getTime() + 1440 * 60_000 - 1))).toBe(false);
    expect(isExpiredAt(c, new Date(c.lastActiveAt.getTime() + 1440 * 60_000))).toBe(true);
  });

  it('moves with activity', () => {
    const clock = new ManualClock();
    const c = base({ lastActiveAt: clock.now(), expiresAfterMinutes: 5 });
    clock.advance(4 * 60_000);
    const touched = { ...c, lastActiveAt: clock.now() };
    clock.advance(4 * 60_000);
    expect(isExpiredAt(c, clock.now())).toBe(true);
    expect(isExpiredAt(touched, clock.now())).toBe(false);
  });

  it('shows a running container past its deadline as expired before the reaper gets to it', () => {
    const c = base({ expiresAfterMinutes: 1 });
    expect(visibleStatus(c, c.lastActiveAt)).toBe('running');
    expect(visibleStatus(c, new Date(c.lastActiveAt.getTime() + 60_000))).toBe('expired');
    expect(visibleStatus(base({ status: 'failed' }), c.lastActiveAt)).toBe('failed');
  });
});

describe('memoryLimitBytes', () => {
  it('reads the upstream sizes as GiB', () => {
    expect(memoryLimitBytes('1g')).toBe(1024 ** 3);
    expect(memoryLimitBytes('64g')).toBe(64 * 1024 ** 3);
  });
});
