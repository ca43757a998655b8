import type { Request, Response } from 'express';
import multer, { type StorageEngine } from 'multer';
import type { Readable } from 'node:stream';
import { BerthError, InvalidRequestError } from '@berth/core';
import { unsupportedMediaType } from './errors.js';

type Store<T> = (req: Request, file: { originalname: string; stream: Readable }) => Promise<T>;
/** Takes back what `store` kept, when the request fails after a part was stored. */
type Undo<T> = (req: Request, stored: T) => Promise<void>;

/** Errors the store raised on its own account (not a relayed parse error): passed on as they are. */
const storeErrors = new WeakSet<object>();

/**
 * A multer storage engine that hands the part's stream straight to `store`, so an upload is
 * never held in memory or spooled to disk. Past `maxBytes` the stream is failed before its end,
 * so nothing incomplete is committed. When the request fails after a part was stored (a second
 * `file` part, a form cut off later), multer calls `_removeFile`, which runs `undo`.
 */
function streamingStorage<T>(store: Store<T>, undo: Undo<T>): StorageEngine {
  return {
    _handleFile(req, file, cb) {
      let streamFailed = false;
      file.stream.once('error', () => {
        streamFailed = true;
      });
      // Past the limit busboy ends the part one byte over it; the store's own counter refuses that
      // with a 413 and cleans up before answering. Destroying the part here instead would let the
      // answer go out while the store is still removing what it wrote.
      // A store that throws synchronously (e.g. a refused path) must still answer, not hang.
      Promise.resolve()
        .then(() => store(req, file))
        .then(
          (stored) => cb(null, { stored } as unknown as Partial<Express.Multer.File>),
          (error: unknown) => {
            // A store that failed because the part itself broke relays busboy's error: that one
            // is judged as a parse error, not as the store's own.
            if (!streamFailed && error instanceof Object) storeErrors.add(error);
            file.stream.resume();
            cb(error as Error);
          },
        );
    },
    _removeFile(req, file, cb) {
      const { stored } = file as unknown as { stored: T };
      undo(req, stored).then(
        () => cb(null),
        (error: unknown) => cb(error as Error),
      );
    },
  };
}

/** What the client got wrong, as a 4xx; the store's own errors (and ours) pass through. */
function uploadError(error: unknown): unknown {
  if (error instanceof BerthError || storeErrors.has(error as object)) return error;
  if ((error as { name?: string } | null)?.name === 'MulterError') return error;
  // busboy's plain Errors: no boundary, 'Malformed part header', 'Unexpected end of form'...
  return new InvalidRequestError('Malformed multipart body.', { cause: error });
}

/**
 * Parses one multipart part named `file` (plus text fields), streaming it to `store`. If the
 * request then fails (another `file` part, a broken form), `undo` takes the stored part back.
 */
/**
 * multer reads the bytes as sent: a compressed form would only fail later as "malformed". A
 * multipart body with a Content-Encoding is refused (415) before any of it is parsed; null: none.
 */
export function refuseEncodedMultipart(req: Request): Promise<never> | null {
  const encoding = (req.header('content-encoding') ?? 'identity').trim().toLowerCase();
  if (encoding === 'identity' || encoding === '') return null;
  req.resume();
  return Promise.reject(unsupportedMediaType('Send multipart uploads without a Content-Encoding.'));
}

export function singleFileUpload<T>(maxBytes: number, store: Store<T>, undo: Undo<T>) {
  // multer 2 passes both high-water marks to busboy; its types don't list them yet.
  const options: multer.Options & { highWaterMark: number; fileHwm: number } = {
    storage: streamingStorage(store, undo),
    // One byte over the limit reaches the store's own counter, which refuses it with a 413.
    limits: { fileSize: maxBytes + 1, files: 1, fields: 8, fieldSize: 8192, parts: 10 },
    defParamCharset: 'utf8',
    // The name as the client sent it: a name with a path in it is refused, not quietly cut down.
    preservePath: true,
    // Room for a few of the request's 64 KiB reads at each step (busboy's default is 16 KiB): else
    // every read pauses the request and waits a turn of the event loop for the part to be read.
    highWaterMark: 256 * 1024,
    fileHwm: 256 * 1024,
  };
  const parse = multer(options).single('file');
  return (req: Request, res: Response): Promise<{ stored: T; filename: string } | null> => {
    const refused = refuseEncodedMultipart(req);
    if (refused) return refused;
    return new Promise((resolve, reject) => {
      parse(req, res, (error: unknown) => {
        if (error) return reject(uploadError(error));
        const file = req.file as unknown as { stored: T; originalname: string } | undefined;
        resolve(file ? { stored: file.stored, filename: file.originalname } : null);
      });
    });
  };
}

const TYPES: Record<string, string> = {
  txt: 'text/plain; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  tsv: 'text/tab-separated-values; charset=utf-8',
  json: 'application/json',
  jsonl: 'application/jsonl',
  html: 'text/html; charset=utf-8',
  xml: 'application/xml',
  py: 'text/x-python; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  ts: 'text/plain; charset=utf-8',
  yaml: 'application/yaml',
  yml: 'application/yaml',
  pdf: 'application/pdf',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  svg: 'image/svg+xml',
  webp: 'image/webp',
  zip: 'application/zip',
  gz: 'application/gzip',
  tar: 'application/x-tar',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  parquet: 'application/vnd.apache.parquet',
};

/** What a download holds back to send in one write. */
const BATCH = 128 * 1024;

/** Streams bytes with Content-Type by extension, Content-Length and a safe Content-Disposition. */
export function sendFile(res: Response, name: string, size: number, stream: Readable): void {
  const ext = name.includes('.') ? name.slice(name.lastIndexOf('.') + 1).toLowerCase() : '';
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  res.status(200);
  res.setHeader('Content-Type', TYPES[ext] ?? 'application/octet-stream');
  res.setHeader('Content-Length', String(size));
  res.setHeader(
    'Content-Disposition',
    `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`,
  );
  res.setHeader('X-Content-Type-Options', 'nosniff');
  stream.on('error', () => res.destroy());
  res.on('close', () => {
    flush();
    stream.destroy();
  });
  // The pieces (a container file's come as the engine's 8-32 KiB frames) are held corked up to
  // BATCH bytes, or a millisecond, and go out as one writev: a write per piece cost the client a
  // read each, and copying them together cost the service a copy of every byte.
  let held = 0;
  let timer: NodeJS.Timeout | null = null;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (!held) return;
    held = 0;
    res.uncork();
  };
  stream.on('data', (chunk: Buffer) => {
    if (!held) res.cork();
    held += chunk.length;
    const room = res.write(chunk);
    if (held >= BATCH) flush();
    else timer ??= setTimeout(flush, 1);
    if (!room) {
      stream.pause();
      res.once('drain', () => stream.resume());
    }
  });
  stream.once('end', () => {
    flush();
    res.end();
  });
}
