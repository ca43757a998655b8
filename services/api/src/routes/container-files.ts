import { Router } from 'express';
import { CreateContainerFileJson, ListQuery, type ContainerFileResource } from '@berth/contracts';
import { ContainerFilesService, InvalidRequestError, type ContainerFileRecord } from '@berth/core';
import { sendFile, singleFileUpload } from '../http/uploads.js';
import { listBody } from '../http/list.js';
import { parseOrThrow } from '../http/validate.js';

const toResource = (f: ContainerFileRecord): ContainerFileResource => ({
  id: f.id,
  object: 'container.file',
  container_id: f.containerId,
  created_at: f.createdAt,
  bytes: f.bytes,
  path: `/mnt/data/${f.path}`,
  source: f.source,
  // Only files of an expired container carry it: what became of them (docs/files.md).
  ...(f.archiveState ? { archive_state: f.archiveState } : {}),
});

export function containerFileRoutes({
  containerFiles,
  maxUploadBytes,
}: {
  containerFiles: ContainerFilesService;
  maxUploadBytes: number;
}): Router {
  const router = Router();
  // `path`, when sent, must come before `file` in the form: the bytes stream as they arrive.
  const upload = singleFileUpload(
    maxUploadBytes,
    (req, file) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const path = typeof body.path === 'string' ? body.path : undefined;
      const target = ContainerFilesService.targetPath(file.originalname, path);
      return containerFiles.upload(req.projectId, req.params.id as string, target, file.stream);
    },
    // The request failed after the file landed: take it out of the sandbox (and its row) again.
    (req, stored) => containerFiles.delete(req.projectId, stored.containerId, stored.id),
  );

  router.post('/containers/:id/files', async (req, res) => {
    if (req.is('multipart/form-data')) {
      const part = await upload(req, res);
      if (!part)
        throw new InvalidRequestError("Missing required parameter: 'file'.", { param: 'file' });
      res.json(toResource(part.stored));
      return;
    }
    const body = parseOrThrow(CreateContainerFileJson, req.body ?? {});
    res.json(
      toResource(await containerFiles.uploadFromFile(req.projectId, req.params.id, body.file_id)),
    );
  });

  router.get('/containers/:id/files', async (req, res) => {
    // A client that goes away stops the listing inside the sandbox.
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const page = await containerFiles.list(
      req.projectId,
      req.params.id,
      parseOrThrow(ListQuery, req.query),
      gone.signal,
    );
    res.json(listBody(page, toResource));
  });

  router.get('/containers/:id/files/:fileId', async (req, res) => {
    res.json(toResource(await containerFiles.get(req.projectId, req.params.id, req.params.fileId)));
  });

  router.get('/containers/:id/files/:fileId/content', async (req, res) => {
    const { record, size, stream } = await containerFiles.content(
      req.projectId,
      req.params.id,
      req.params.fileId,
    );
    sendFile(res, record.path.slice(record.path.lastIndexOf('/') + 1), size, stream);
  });

  router.delete('/containers/:id/files/:fileId', async (req, res) => {
    await containerFiles.delete(req.projectId, req.params.id, req.params.fileId);
    res.json({ id: req.params.fileId, object: 'container.file.deleted', deleted: true });
  });
  return router;
}
