import type { Request, Response } from 'express';
import multer, { type StorageEngine } from 'multer';
import type { Readable } from 'node:stream';
import { PayloadTooLargeError } from '@berth/core';

type Store<T> = (req: Request, file: { originalname: string; stream: Readable }) => Promise<T>;

/**
 * A multer storage engine that hands the part's stream straight to `store`, so an upload is
 * never held in memory or spooled to disk. Past `maxBytes` the stream is failed before its end,
 * so nothing incomplete is committed.
 */
function streamingStorage<T>(store: Store<T>): StorageEngine {
  return {
    _handleFile(req, file, cb) {
      file.stream.once('limit', () =>
        file.stream.destroy(new PayloadTooLargeError('File too large.')),
      );
      // A store that throws synchronously (e.g. a refused path) must still answer, not hang.
      Promise.resolve()
        .then(() => store(req, file))
        .then(
          (stored) => cb(null, { stored } as unknown as Partial<Express.Multer.File>),
          (error: unknown) => {
            file.stream.resume();
            cb(error as Error);
          },
        );
    },
    _removeFile(_req, _file, cb) {
      cb(null);
    },
  };
}

/** Parses one multipart part named `file` (plus text fields), streaming it to `store`. */
export function singleFileUpload<T>(maxBytes: number, store: Store<T>) {
  const parse = multer({
    storage: streamingStorage(store),
    // One byte over the limit reaches the store's own counter, which refuses it with a 413.
    limits: { fileSize: maxBytes + 1, files: 1, fields: 8, fieldSize: 8192, parts: 10 },
    defParamCharset: 'utf8',
    // The name as the client sent it: a name with a path in it is refused, not quietly cut down.
    preservePath: true,
  }).single('file');
  return (req: Request, res: Response): Promise<{ stored: T; filename: string } | null> =>
    new Promise((resolve, reject) => {
      parse(req, res, (error: unknown) => {
        if (error) return reject(error);
        const file = req.file as unknown as { stored: T; originalname: string } | undefined;
        resolve(file ? { stored: file.stored, filename: file.originalname } : null);
      });
    });
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
  res.on('close', () => stream.destroy());
  stream.pipe(res);
}
