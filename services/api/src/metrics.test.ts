import { describe, expect, it } from 'vitest';
import { egressReasonCategory, failureReasonCategory, Metrics } from './metrics.js';

describe('metric label categories', () => {
  it.each([
    [undefined, 'none'],
    ["evil.test is not on this container's allowlist", 'not_allowlisted'],
    ['not a hostname (IP literals are refused)', 'ip_literal'],
    ['port 22 is not allowed (only 80 and 443)', 'port'],
    ['a.test resolves to 10.0.0.1, which is not a public address', 'address_refused'],
    ['a.test does not resolve', 'address_refused'],
    ["too many connections (this sandbox's cap is 64)", 'too_many_connections'],
    ['no complete request in time (head 10000 ms, whole 30000 ms)', 'timeout'],
    ['malformed request (HPE_INVALID_METHOD)', 'malformed'],
    ['the client went away before the tunnel opened', 'client_gone'],
    ['something new', 'other'],
  ])('egress reason %j is %s', (reason, category) => {
    expect(egressReasonCategory(reason)).toBe(category);
  });

  it.each([
    ['sandbox was killed for exceeding its memory limit', 'oom'],
    ['sandbox is not responding (inspect took over 10000 ms)', 'unresponsive'],
    ['sandbox vanished', 'vanished'],
    ['sandbox stopped (exit code 1)', 'stopped'],
  ])('failure reason %j is %s', (reason, category) => {
    expect(failureReasonCategory(reason)).toBe(category);
  });

  it('keeps its own registry: two instances never collide, the global registry stays empty', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.execs.inc({ outcome: 'exit' });
    expect(await b.registry.getSingleMetricAsString('berth_execs_total')).not.toContain(
      'outcome="exit"',
    );
    expect(await a.registry.getSingleMetricAsString('berth_execs_total')).toContain(
      'berth_execs_total{outcome="exit"} 1',
    );
    const { register } = await import('prom-client');
    expect(register.getMetricsAsArray()).toEqual([]);
  });
});
