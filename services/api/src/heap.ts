import v8 from 'node:v8';

/**
 * How far V8 lets the old generation grow past what the last full GC kept, in percent. V8 starts
 * incremental marking whenever that headroom is smaller than the young generation (16 MiB here):
 * at its default growth (about 1.3x) a service holding ~32 MiB live had ~10 MiB of headroom, so
 * under a transfer's allocation rate it marked back to back, a full GC every ~80 ms, and a 200 MB
 * upload cost ~900 ms of CPU instead of ~350 (docs/files.md). Twice the live heap leaves room.
 */
export const HEAP_GROWING_PERCENT = 100;

/**
 * Sets V8's heap growth for this process, unless the operator chose one on the command line
 * (`node --heap-growing-percent=N`). Returns the percent in force.
 */
export function tuneHeapGrowth(execArgv: readonly string[] = process.execArgv): number | null {
  // V8 takes its flags spelt with dashes or underscores.
  const own = execArgv.find((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a));
  if (own) return Number(own.split('=')[1]) || null;
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return HEAP_GROWING_PERCENT;
}
