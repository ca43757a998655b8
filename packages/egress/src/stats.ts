import type { EgressDecision, EgressStats } from '@berth/core';
export interface EgressLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  /** For faults of the proxy itself; `warn` when absent. */
  error?(fields: object, message: string): void;
}

/** The proxy's records are core's: routes and metrics read them without knowing this package. */
export type Decision = EgressDecision;
export type { EgressStats };

export const emptyStats = (): EgressStats => ({
  allowed: 0,
  denied: 0,
  bytesUp: 0,
  bytesDown: 0,
  recent: [],
  substitutions: {},
});

/** Counts one decision into a sandbox's stats, keeps the last `keep`, and logs it. */
export function recordDecision(
  stats: EgressStats,
  d: Decision,
  keep: number,
  log: EgressLogger | undefined,
): void {
  if (d.decision === 'allowed') stats.allowed += 1;
  else stats.denied += 1;
  stats.bytesUp += d.bytesUp;
  stats.bytesDown += d.bytesDown;
  stats.recent.push(d);
  if (stats.recent.length > keep) stats.recent.shift();
  if (d.decision === 'allowed') log?.info({ egress: d }, 'egress allowed');
  else log?.warn({ egress: d }, 'egress denied');
}
