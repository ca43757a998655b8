import { z } from 'zod';
import { ListQuery, listOf, Deleted, text } from './common.js';

export const FileObject = z
  .object({
    id: z.string(),
    object: z.literal('file'),
    bytes: z.number().int(),
    created_at: z.number().int(),
    /** Set by `expires_after`; null when the file is kept until deleted. */
    expires_at: z.number().int().nullable(),
    filename: z.string(),
    purpose: z.string(),
    status: z.literal('processed'),
  })
  .meta({ id: 'OpenAIFile' });
export type FileObject = z.infer<typeof FileObject>;

export const FileList = listOf(FileObject, 'ListFilesResponse');
export const FileDeleted = Deleted('file', 'DeleteFileResponse');

/**
 * Upstream's `expires_after` of `POST /v1/files`. Multipart fields are text, and the SDK sends it
 * as `expires_after[anchor]` and `expires_after[seconds]`, which arrive as an object of strings.
 */
export const FileExpiresAfter = z
  .object({
    anchor: z.literal('created_at', { error: "anchor must be 'created_at'" }),
    seconds: z.coerce
      .number({ error: 'seconds must be an integer between 3600 and 2592000' })
      .int('seconds must be an integer between 3600 and 2592000')
      .min(3600, 'seconds must be an integer between 3600 and 2592000')
      .max(2_592_000, 'seconds must be an integer between 3600 and 2592000'),
  })
  .strict();

/** The text fields of `POST /v1/files` besides `purpose` (checked by the use-case). */
export const FileUploadFields = z.object({ expires_after: FileExpiresAfter.optional() });

/** Upstream: limit 1–10,000, default 10,000. */
export const ListFilesQuery = ListQuery.extend({
  limit: z.coerce
    .number({ error: 'limit must be an integer between 1 and 10000' })
    .int('limit must be an integer between 1 and 10000')
    .min(1, 'limit must be an integer between 1 and 10000')
    .max(10_000, 'limit must be an integer between 1 and 10000')
    .default(10_000),
  purpose: text().min(1).max(64).optional(),
});

export const ContainerFileResource = z
  .object({
    id: z.string(),
    object: z.literal('container.file'),
    container_id: z.string(),
    created_at: z.number().int(),
    bytes: z.number().int(),
    path: z.string(),
    source: z.enum(['user', 'assistant']),
    /** (ours) Only on an expired container: whether the file was kept (see docs/files.md). */
    archive_state: z.enum(['archived', 'over_cap', 'failed', 'purged', 'not_archived']).optional(),
  })
  .meta({ id: 'ContainerFileResource' });
export type ContainerFileResource = z.infer<typeof ContainerFileResource>;

export const ContainerFileList = listOf(ContainerFileResource, 'ContainerFileListResource');
export const ContainerFileDeleted = Deleted(
  'container.file.deleted',
  'ContainerFileDeletedResource',
);

export const CreateContainerFileJson = z.object({ file_id: text().min(1).max(128) }).strict();
