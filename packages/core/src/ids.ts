import { randomBytes } from 'node:crypto';

/**
 * Object ids start with their creation time in hex (as upstream's container ids do:
 * `cntr_682dfeba…` ↔ created_at 1747844794), then random hex. Lists are ordered by
 * (created_at, id), so an id alone is a complete keyset cursor, even after its row is deleted.
 */
export type IdKind = 'container' | 'containerFile' | 'file' | 'exec' | 'session' | 'sessionRun';

const spec: Record<IdKind, { prefix: string; hexLength: number }> = {
  container: { prefix: 'cntr_', hexLength: 48 },
  containerFile: { prefix: 'cfile_', hexLength: 32 },
  file: { prefix: 'file-', hexLength: 32 },
  exec: { prefix: 'exec_', hexLength: 32 },
  session: { prefix: 'sess_', hexLength: 32 },
  sessionRun: { prefix: 'run_', hexLength: 32 },
};

export function newId(kind: IdKind, createdAtSeconds: number): string {
  const { prefix, hexLength } = spec[kind];
  const time = Math.max(0, Math.floor(createdAtSeconds)).toString(16).padStart(8, '0').slice(-8);
  const random = randomBytes(Math.ceil((hexLength - 8) / 2))
    .toString('hex')
    .slice(0, hexLength - 8);
  return `${prefix}${time}${random}`;
}

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
  return Number.parseInt(value.slice(spec[kind].prefix.length, spec[kind].prefix.length + 8), 16);
}
