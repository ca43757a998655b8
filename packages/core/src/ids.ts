import { randomBytes } from 'node:crypto';

/**
 * Object ids start with their creation time in hex (as upstream's container ids do:
 * `cntr_682dfeba…` ↔ created_at 1747844794), then a sub-second tick, then random hex. Lists are
 * ordered by (created_at, id), and the id's text order is its creation order: an id alone is a
 * complete keyset cursor, even after its row is deleted, and ids made in the same second still
 * list in the order they were made.
 */
export type IdKind =
  'container' | 'containerFile' | 'file' | 'exec' | 'skill' | 'session' | 'sessionRun';

const spec: Record<IdKind, { prefix: string; hexLength: number }> = {
  container: { prefix: 'cntr_', hexLength: 48 },
  containerFile: { prefix: 'cfile_', hexLength: 32 },
  file: { prefix: 'file-', hexLength: 32 },
  exec: { prefix: 'exec_', hexLength: 32 },
  skill: { prefix: 'skill_', hexLength: 32 },
  session: { prefix: 'sess_', hexLength: 32 },
  sessionRun: { prefix: 'run_', hexLength: 32 },
};

const TIME_HEX = 8;
/** Five hex digits after the seconds: microseconds within the second, 0–999,999. */
const TICK_HEX = 5;
const TICKS_PER_SECOND = 1_000_000;

/**
 * Makes ids as one process does. The clock has millisecond precision, so an id made within the
 * same millisecond as (or, the clock having stepped back, before) the last one takes the next
 * tick: ids one process makes sort exactly in the order they were made. Ids of two replicas sort
 * by their clocks, to the millisecond; a tie falls to the random part.
 */
export function idMinter(): (kind: IdKind, createdAt: Date | number) => string {
  let last = { second: -1, tick: -1 };
  const nextTick = (second: number, tick: number): number => {
    if (second < last.second) return tick; // a time from the past: its own tick, state kept
    if (second === last.second && tick <= last.tick)
      tick = Math.min(last.tick + 1, TICKS_PER_SECOND - 1);
    last = { second, tick };
    return tick;
  };
  return (kind, createdAt) => {
    const { prefix, hexLength } = spec[kind];
    const ms = typeof createdAt === 'number' ? Math.floor(createdAt) * 1000 : createdAt.getTime();
    const second = Math.max(0, Math.floor(ms / 1000));
    const tick = nextTick(second, ms < 0 ? 0 : (ms % 1000) * 1000);
    const time = second.toString(16).padStart(TIME_HEX, '0').slice(-TIME_HEX);
    const sub = tick.toString(16).padStart(TICK_HEX, '0');
    const randomHex = hexLength - TIME_HEX - TICK_HEX;
    const random = randomBytes(Math.ceil(randomHex / 2))
      .toString('hex')
      .slice(0, randomHex);
    return `${prefix}${time}${sub}${random}`;
  };
}

/**
 * A new id for an object created at `createdAt`: a Date (to the millisecond, as the clock gives
 * it), or unix seconds. The id's first 8 hex digits are always `floor(createdAt in seconds)`.
 */
export const newId = idMinter();

export function isId(kind: IdKind, value: string): boolean {
  const { prefix, hexLength } = spec[kind];
  return (
    value.length === prefix.length + hexLength &&
    value.startsWith(prefix) &&
    /^[0-9a-f]+$/.test(value.slice(prefix.length))
  );
}

/** The creation time (unix seconds) encoded in a well-formed id. */
export function idCreatedAt(kind: IdKind, value: string): number {
  if (!isId(kind, value)) throw new TypeError(`not a ${kind} id: ${value}`);
  return Number.parseInt(
    value.slice(spec[kind].prefix.length, spec[kind].prefix.length + TIME_HEX),
    16,
  );
}
