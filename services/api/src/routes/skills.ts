import { Router, type Request, type Response } from 'express';
import multer, { type StorageEngine } from 'multer';
import {
  ListSkillsQuery,
  UpdateSkillBody,
  type SkillResource,
  type SkillVersionResource,
} from '@berth/contracts';
import {
  BUNDLE_UPLOAD_LIMITS,
  InvalidRequestError,
  PayloadTooLargeError,
  type SkillRecord,
  type SkillsService,
  type SkillVersionRecord,
  type UploadedPart,
} from '@berth/core';
import { listBody } from '../http/list.js';
import { parseOrThrow } from '../http/validate.js';
import { refuseEncodedMultipart, sendFile } from '../http/uploads.js';

export const toSkillResource = (s: SkillRecord): SkillResource => ({
  id: s.id,
  object: 'skill',
  name: s.name,
  description: s.description,
  created_at: s.createdAt,
  default_version: String(s.defaultVersion),
  latest_version: String(s.latestVersion),
});

export const toSkillVersionResource = (v: SkillVersionRecord): SkillVersionResource => ({
  id: v.id,
  object: 'skill.version',
  skill_id: v.skillId,
  version: String(v.version),
  name: v.name,
  description: v.description,
  created_at: v.createdAt,
});

const FILE_FIELDS = new Set(['files', 'files[]']);

/**
 * Parts are held in memory: a bundle is checked whole (SKILL.md, limits, zip structure) before
 * any of it is kept. The total across parts is bounded as it arrives, not after.
 */
function memoryParts(maxTotal: number): StorageEngine {
  const totals = new WeakMap<Request, number>();
  return {
    _handleFile(req, file, cb) {
      if (!FILE_FIELDS.has(file.fieldname)) {
        file.stream.resume();
        cb(
          new InvalidRequestError(
            `Unexpected file part '${file.fieldname}': send the bundle as 'files'.`,
            {
              param: file.fieldname,
            },
          ),
        );
        return;
      }
      const chunks: Buffer[] = [];
      let failed = false;
      file.stream.on('data', (chunk: Buffer) => {
        if (failed) return;
        const total = (totals.get(req) ?? 0) + chunk.length;
        totals.set(req, total);
        if (total > maxTotal) {
          failed = true;
          file.stream.resume();
          cb(new PayloadTooLargeError(`Skill upload too large: the limit is ${maxTotal} bytes.`));
          return;
        }
        chunks.push(chunk);
      });
      file.stream.once('error', (error: Error) => {
        if (!failed) {
          failed = true;
          cb(error);
        }
      });
      file.stream.once('end', () => {
        if (!failed) cb(null, { buffer: Buffer.concat(chunks) } as Partial<Express.Multer.File>);
      });
    },
    _removeFile(_req, _file, cb) {
      cb(null);
    },
  };
}

function uploadParser() {
  const parse = multer({
    storage: memoryParts(BUNDLE_UPLOAD_LIMITS.maxZipBytes),
    limits: {
      files: BUNDLE_UPLOAD_LIMITS.maxFiles,
      fields: 8,
      fieldSize: 1024,
      parts: BUNDLE_UPLOAD_LIMITS.maxFiles + 8,
    },
    defParamCharset: 'utf8',
    // A directory upload names each file by its path in the bundle.
    preservePath: true,
  }).any();
  return (
    req: Request,
    res: Response,
  ): Promise<{ parts: UploadedPart[]; fields: Record<string, unknown> }> => {
    if (!req.is('multipart/form-data'))
      return Promise.reject(
        new InvalidRequestError(
          "Upload skills as multipart/form-data with the bundle in 'files' (one zip, or a directory's files).",
        ),
      );
    const refused = refuseEncodedMultipart(req);
    if (refused) return refused;
    return new Promise((resolve, reject) => {
      parse(req, res, (error: unknown) => {
        if (error) {
          const e = error as { name?: string; code?: string };
          if (e.name === 'MulterError' && e.code === 'LIMIT_FILE_COUNT')
            return reject(
              new InvalidRequestError(
                `Too many files: a skill has at most ${BUNDLE_UPLOAD_LIMITS.maxFiles}.`,
                { param: 'files' },
              ),
            );
          if (e.name === 'MulterError' || error instanceof InvalidRequestError)
            return reject(error);
          if (error instanceof PayloadTooLargeError) return reject(error);
          return reject(new InvalidRequestError('Malformed multipart body.', { cause: error }));
        }
        const files = (req.files ?? []) as (Express.Multer.File & { buffer: Buffer })[];
        resolve({
          parts: files.map((f) => ({ name: f.originalname, data: f.buffer })),
          fields: (req.body ?? {}) as Record<string, unknown>,
        });
      });
    });
  };
}

function parseDefault(value: unknown): boolean {
  if (value === undefined) return false;
  if (value === 'true' || value === true) return true;
  if (value === 'false' || value === false) return false;
  throw new InvalidRequestError("Invalid 'default': must be true or false.", { param: 'default' });
}

/** /v1/skills and its versions, with upstream's shapes. */
export function skillRoutes({ skills }: { skills: SkillsService }): Router {
  const router = Router();
  const upload = uploadParser();

  router.post('/skills', async (req, res) => {
    const { parts } = await upload(req, res);
    const { skill } = await skills.create(req.projectId, parts);
    res.json(toSkillResource(skill));
  });

  router.get('/skills', async (req, res) => {
    const q = parseOrThrow(ListSkillsQuery, req.query);
    res.json(listBody(await skills.list(req.projectId, q), toSkillResource));
  });

  router.get('/skills/:id', async (req, res) => {
    res.json(toSkillResource(await skills.get(req.projectId, req.params.id)));
  });

  router.post('/skills/:id', async (req, res) => {
    const body = parseOrThrow(UpdateSkillBody, req.body ?? {});
    res.json(
      toSkillResource(
        await skills.setDefault(req.projectId, req.params.id, String(body.default_version)),
      ),
    );
  });

  router.delete('/skills/:id', async (req, res) => {
    await skills.delete(req.projectId, req.params.id);
    res.json({ id: req.params.id, object: 'skill.deleted', deleted: true });
  });

  router.get('/skills/:id/content', async (req, res) => {
    const { filename, size, stream } = await skills.content(req.projectId, req.params.id);
    sendFile(res, filename, size, stream);
  });

  router.post('/skills/:id/versions', async (req, res) => {
    const { parts, fields } = await upload(req, res);
    const makeDefault = parseDefault(fields.default);
    const version = await skills.createVersion(req.projectId, req.params.id, parts, makeDefault);
    res.json(toSkillVersionResource(version));
  });

  router.get('/skills/:id/versions', async (req, res) => {
    const q = parseOrThrow(ListSkillsQuery, req.query);
    res.json(
      listBody(await skills.listVersions(req.projectId, req.params.id, q), toSkillVersionResource),
    );
  });

  router.get('/skills/:id/versions/:version', async (req, res) => {
    const v = await skills.getVersion(req.projectId, req.params.id, req.params.version);
    res.json(toSkillVersionResource(v));
  });

  router.delete('/skills/:id/versions/:version', async (req, res) => {
    const v = await skills.deleteVersion(req.projectId, req.params.id, req.params.version);
    res.json({
      id: v.id,
      object: 'skill.version.deleted',
      deleted: true,
      version: String(v.version),
    });
  });

  router.get('/skills/:id/versions/:version/content', async (req, res) => {
    const { filename, size, stream } = await skills.versionContent(
      req.projectId,
      req.params.id,
      req.params.version,
    );
    sendFile(res, filename, size, stream);
  });

  return router;
}
