import { z } from 'zod';
import { ListQuery, listOf, Deleted, text } from './common.js';

export const FileObject = z
  .object({
    id: z.string(),
    object: z.literal('file'),
    bytes: z.number().int(),
    created_at: z.number().int(),
    filename: z.string(),
    purpose: z.string(),
    status: z.literal('processed'),
  })
  .meta({ id: 'OpenAIFile' });
export type FileObject = z.infer<typeof FileObject>;

export const FileList = listOf(FileObject, 'ListFilesResponse');
export const FileDeleted = Deleted('file', 'DeleteFileResponse');

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
