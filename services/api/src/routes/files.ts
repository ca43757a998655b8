import { Router } from 'express';
import { FileUploadFields, ListFilesQuery, type FileObject } from '@berth/contracts';
import { InvalidRequestError, type FileRecord, type FilesService } from '@berth/core';
import { sendFile, singleFileUpload } from '../http/uploads.js';
import { listBody } from '../http/list.js';
import { parseOrThrow } from '../http/validate.js';

export const toFileObject = (f: FileRecord): FileObject => ({
  id: f.id,
  object: 'file',
  bytes: f.bytes,
  created_at: f.createdAt,
  expires_at: f.expiresAt,
  filename: f.filename,
  purpose: f.purpose,
  status: 'processed',
});

/** The part of the Files API that `file_ids` needs. */
export function fileRoutes({
  files,
  maxUploadBytes,
}: {
  files: FilesService;
  maxUploadBytes: number;
}): Router {
  const router = Router();
  const upload = singleFileUpload(
    maxUploadBytes,
    (req, file) => files.upload(req.projectId, file.originalname, file.stream),
    // The blob has no row yet: dropping it leaves nothing behind.
    (_req, stored) => files.discard(stored.id),
  );

  router.post('/files', async (req, res) => {
    if (!req.is('multipart/form-data')) {
      throw new InvalidRequestError(
        'Upload files as multipart/form-data with the parts `file` and `purpose`.',
      );
    }
    const part = await upload(req, res);
    if (!part)
      throw new InvalidRequestError("Missing required parameter: 'file'.", { param: 'file' });
    const body = (req.body ?? {}) as Record<string, unknown>;
    const purpose = typeof body.purpose === 'string' ? body.purpose : undefined;
    let expiresAfter: number | null = null;
    try {
      expiresAfter = parseOrThrow(FileUploadFields, body).expires_after?.seconds ?? null;
    } catch (error) {
      await files.discard(part.stored.id);
      throw error;
    }
    res.json(
      toFileObject(
        await files.commit(req.projectId, part.stored, part.filename, purpose, expiresAfter),
      ),
    );
  });

  router.get('/files', async (req, res) => {
    const q = parseOrThrow(ListFilesQuery, req.query);
    const page = await files.list(req.projectId, q);
    res.json(listBody(page, toFileObject));
  });

  router.get('/files/:id', async (req, res) => {
    res.json(toFileObject(await files.get(req.projectId, req.params.id)));
  });

  router.get('/files/:id/content', async (req, res) => {
    const { record, size, stream } = await files.content(req.projectId, req.params.id);
    sendFile(res, record.filename, size, stream);
  });

  router.delete('/files/:id', async (req, res) => {
    await files.delete(req.projectId, req.params.id);
    res.json({ id: req.params.id, object: 'file', deleted: true });
  });
  return router;
}
