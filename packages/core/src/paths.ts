import { posix } from 'node:path';
import { InvalidRequestError } from './errors.js';

export const DATA_ROOT = '/mnt/data';
const MAX_PATH_BYTES = 4096;
const MAX_NAME_BYTES = 255;

/**
 * Resolves a path a client gave to an absolute path under /mnt/data, or throws a 400 naming
 * `param`. Relative paths are taken from /mnt/data. `..` may not climb out; NUL bytes, empty
 * names and over-long paths are refused. Percent-escapes are decoded once first, so `%2e%2e`
 * is judged as the `..` it means. This is lexical: symlinks are the sandbox side's job.
 */
export function resolveDataPath(input: string, param: string): string {
  let decoded: string;
  try {
    decoded = input.includes('%') ? decodeURIComponent(input) : input;
  } catch {
    throw new InvalidRequestError(`Invalid '${param}': malformed percent-encoding.`, { param });
  }
  if (decoded.length === 0)
    throw new InvalidRequestError(`Invalid '${param}': empty path.`, { param });
  if (decoded.includes('\0'))
    throw new InvalidRequestError(`Invalid '${param}': NUL bytes are not allowed.`, { param });
  if (Buffer.byteLength(decoded) > MAX_PATH_BYTES) {
    throw new InvalidRequestError(`Invalid '${param}': longer than ${MAX_PATH_BYTES} bytes.`, {
      param,
    });
  }
  const segments = decoded.split('/');
  if (segments.includes('..')) {
    throw new InvalidRequestError(`Invalid '${param}': '..' is not allowed.`, { param });
  }
  if (segments.some((s) => Buffer.byteLength(s) > MAX_NAME_BYTES)) {
    throw new InvalidRequestError(
      `Invalid '${param}': a name is longer than ${MAX_NAME_BYTES} bytes.`,
      { param },
    );
  }
  const absolute = posix.normalize(decoded.startsWith('/') ? decoded : `${DATA_ROOT}/${decoded}`);
  const trimmed = absolute.length > 1 ? absolute.replace(/\/+$/, '') : absolute;
  if (trimmed !== DATA_ROOT && !trimmed.startsWith(`${DATA_ROOT}/`)) {
    throw new InvalidRequestError(`Invalid '${param}': must be under ${DATA_ROOT}.`, { param });
  }
  return trimmed;
}
