import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { BundleError } from './bundle-error.js';

export interface ZipLimits {
  /** Largest zip accepted, in bytes. */
  maxZipBytes: number;
  /** Most files (directories not counted). */
  maxFiles: number;
  /** Largest single file once unpacked. */
  maxFileBytes: number;
  /** Largest sum of unpacked file sizes. */
  maxTotalBytes: number;
  /** Largest unpacked/packed ratio of one entry, judged only past `ratioFloorBytes`. */
  maxRatio: number;
  ratioFloorBytes: number;
}

export interface ZipFileEntry {
  /** `/`-separated, relative, checked: no `.`/`..`, no empty segment, valid UTF-8. */
  path: string;
  data: Buffer;
  executable: boolean;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const TYPE_NAMES: Record<number, string> = {
  [S_IFLNK]: 'a symbolic link',
  0o020000: 'a character device',
  0o060000: 'a block device',
  0o010000: 'a FIFO',
  0o140000: 'a socket',
};
const MADE_BY_UNIX = 3;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Why a path may not be unpacked anywhere, or null. */
export function pathProblem(path: string): string | null {
  if (path.length === 0) return 'it is empty';
  if (path.includes('\0')) return 'it contains a NUL byte';
  if ([...path].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f))
    return 'it contains control characters';
  if (path.includes('\\')) return 'it contains a backslash';
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return 'it is an absolute path';
  const segments = path.replace(/\/$/, '').split('/');
  if (segments.includes('..')) return "it contains '..'";
  if (segments.some((s) => s === '' || s === '.')) return "it has an empty or '.' segment";
  if (segments.some((s) => Buffer.byteLength(s) > 255)) return 'a name in it is over 255 bytes';
  if (Buffer.byteLength(path) > 1024) return 'it is over 1024 bytes';
  return null;
}

const shown = (name: string) => JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);

function entryName(entry: yauzl.Entry): string {
  const raw = entry.fileName as unknown as Buffer;
  try {
    return utf8.decode(raw);
  } catch {
    throw new BundleError(
      `The zip entry ${shown(raw.toString('latin1'))} has a name that is not valid UTF-8.`,
    );
  }
}

function readStream(stream: Readable, limit: number, name: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limit) {
        stream.destroy();
        reject(new BundleError(`The zip entry ${shown(name)} unpacks past its declared size.`));
        return;
      }
      chunks.push(chunk);
    });
    stream.once('error', (error: Error) =>
      reject(
        new BundleError(`The zip entry ${shown(name)} is corrupt: ${error.message}.`, {
          cause: error,
        }),
      ),
    );
    stream.once('end', () => resolve(Buffer.concat(chunks)));
  });
}

/**
 * Unpacks a zip that came from a client, refusing anything hostile before any of it is kept:
 * a malformed central directory, encrypted entries, names with `..`, absolute or invalid names,
 * symbolic links, devices, FIFOs, duplicate names, and zip bombs (declared sizes past the limits,
 * a suspicious ratio, or data that unpacks past what its entry declares). Directories are dropped:
 * they are implied by the files' paths.
 */
export async function readZip(zip: Buffer, limits: ZipLimits): Promise<ZipFileEntry[]> {
  if (zip.length > limits.maxZipBytes)
    throw new BundleError(`The zip is larger than ${limits.maxZipBytes} bytes.`);
  let file: yauzl.ZipFile;
  try {
    file = await yauzl.fromBufferPromise(zip, {
      lazyEntries: true,
      decodeStrings: false,
      validateEntrySizes: true,
      strictFileNames: false,
    });
  } catch (error) {
    throw new BundleError(`Malformed zip: ${(error as Error).message}.`, { cause: error });
  }
  if (file.entryCount > limits.maxFiles * 4 + 64)
    throw new BundleError(
      `The zip has ${file.entryCount} entries; at most ${limits.maxFiles} files are allowed.`,
    );
  const entries: yauzl.Entry[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      file.on('entry', (entry: yauzl.Entry) => {
        entries.push(entry);
        file.readEntry();
      });
      file.once('end', () => resolve());
      file.once('error', reject);
      file.readEntry();
    });
  } catch (error) {
    file.close();
    throw new BundleError(`Malformed zip central directory: ${(error as Error).message}.`, {
      cause: error,
    });
  }

  // Every check on the central directory comes before any entry is unpacked.
  const seen = new Map<string, 'file' | 'dir'>();
  const files: { entry: yauzl.Entry; path: string; executable: boolean }[] = [];
  let total = 0;
  for (const entry of entries) {
    const name = entryName(entry);
    const problem = pathProblem(name);
    if (problem) throw new BundleError(`The zip entry ${shown(name)} is refused: ${problem}.`);
    if (entry.isEncrypted() || (entry.generalPurposeBitFlag & 0x40) !== 0)
      throw new BundleError(
        `The zip entry ${shown(name)} is encrypted; encrypted zips are refused.`,
      );
    const mode =
      entry.versionMadeBy >> 8 === MADE_BY_UNIX ? entry.externalFileAttributes >>> 16 : 0;
    const type = mode & S_IFMT;
    const isDir =
      name.endsWith('/') || type === S_IFDIR || (entry.externalFileAttributes & 0x10) !== 0;
    if (type !== 0 && type !== S_IFREG && type !== S_IFDIR)
      throw new BundleError(
        `The zip entry ${shown(name)} is ${TYPE_NAMES[type] ?? 'not a regular file'}; only regular files and directories are allowed.`,
      );
    const path = name.replace(/\/$/, '');
    const kind = isDir ? 'dir' : 'file';
    const before = seen.get(path);
    if (before && (before === 'file' || kind === 'file'))
      throw new BundleError(`The zip has the name ${shown(path)} more than once.`);
    seen.set(path, kind);
    if (isDir) {
      if (entry.uncompressedSize !== 0)
        throw new BundleError(`The zip directory entry ${shown(name)} carries data.`);
      continue;
    }
    if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8)
      throw new BundleError(
        `The zip entry ${shown(name)} uses compression method ${entry.compressionMethod}; only stored and deflate are supported.`,
      );
    if (entry.uncompressedSize > limits.maxFileBytes)
      throw new BundleError(
        `The zip entry ${shown(name)} unpacks to ${entry.uncompressedSize} bytes; a file may have at most ${limits.maxFileBytes}.`,
      );
    total += entry.uncompressedSize;
    if (total > limits.maxTotalBytes)
      throw new BundleError(
        `The zip unpacks to more than ${limits.maxTotalBytes} bytes in total (a zip bomb, or too large a bundle).`,
      );
    files.push({ entry, path, executable: (mode & 0o111) !== 0 });
    if (files.length > limits.maxFiles)
      throw new BundleError(`The zip has more than ${limits.maxFiles} files.`);
  }
  for (const { entry, path } of files) {
    if (
      entry.uncompressedSize > limits.ratioFloorBytes &&
      entry.uncompressedSize > entry.compressedSize * limits.maxRatio
    )
      throw new BundleError(
        `The zip entry ${shown(path)} expands more than ${limits.maxRatio}:1 (${entry.compressedSize} to ${entry.uncompressedSize} bytes), as zip bombs do.`,
      );
  }
  // A file may not also be a directory that others live in (`a` and `a/b`).
  for (const { path } of files) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      if (seen.get(parts.slice(0, i).join('/')) === 'file')
        throw new BundleError(
          `The zip has ${shown(parts.slice(0, i).join('/'))} both as a file and as a directory.`,
        );
    }
  }

  try {
    const out: ZipFileEntry[] = [];
    for (const { entry, path, executable } of files) {
      let stream: Readable;
      try {
        stream = await file.openReadStreamPromise(entry);
      } catch (error) {
        throw new BundleError(
          `The zip entry ${shown(path)} is corrupt: ${(error as Error).message}.`,
          {
            cause: error,
          },
        );
      }
      const data = await readStream(stream, entry.uncompressedSize, path);
      if (data.length !== entry.uncompressedSize)
        throw new BundleError(
          `The zip entry ${shown(path)} unpacks to ${data.length} bytes, not the ${entry.uncompressedSize} it declares.`,
        );
      out.push({ path, data, executable });
    }
    return out;
  } finally {
    file.close();
  }
}
