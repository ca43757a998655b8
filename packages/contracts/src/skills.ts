import { z } from 'zod';
import { ListQuery, listOf, text } from './common.js';

export const SkillResource = z
  .object({
    id: z.string(),
    object: z.literal('skill'),
    name: z.string(),
    description: z.string(),
    created_at: z.number().int(),
    default_version: z.string(),
    latest_version: z.string(),
  })
  .meta({ id: 'SkillResource' });
export type SkillResource = z.infer<typeof SkillResource>;

export const SkillVersionResource = z
  .object({
    id: z.string(),
    object: z.literal('skill.version'),
    skill_id: z.string(),
    version: z.string(),
    name: z.string(),
    description: z.string(),
    created_at: z.number().int(),
  })
  .meta({ id: 'SkillVersionResource' });
export type SkillVersionResource = z.infer<typeof SkillVersionResource>;

export const SkillList = listOf(SkillResource, 'SkillListResource');
export const SkillVersionList = listOf(SkillVersionResource, 'SkillVersionListResource');
export const SkillDeleted = z
  .object({ id: z.string(), object: z.literal('skill.deleted'), deleted: z.literal(true) })
  .meta({ id: 'DeletedSkillResource' });
export const SkillVersionDeleted = z
  .object({
    id: z.string(),
    object: z.literal('skill.version.deleted'),
    deleted: z.literal(true),
    version: z.string(),
  })
  .meta({ id: 'DeletedSkillVersionResource' });

export const UpdateSkillBody = z
  // Upstream types it a string ('2'); an integer is taken too.
  .object({ default_version: z.union([z.number().int().min(1), text().min(1).max(16)]) })
  .strict()
  .meta({ id: 'UpdateSkillBody' });

export const ListSkillsQuery = ListQuery;

/** Multipart: `files` (several parts for a directory upload, or one zip); SDKs send `files[]`. */
export const CreateSkillBody = z
  .object({
    files: z.array(z.string().meta({ format: 'binary' })).min(1),
  })
  .meta({ id: 'CreateSkillBody' });
export const CreateSkillVersionBody = CreateSkillBody.extend({
  default: z.boolean().optional(),
}).meta({ id: 'CreateSkillVersionBody' });

/** How a container shows the skills placed in it (ours). */
export const ContainerSkill = z
  .object({ name: z.string(), description: z.string(), path: z.string() })
  .meta({ id: 'ContainerSkill' });
export type ContainerSkill = z.infer<typeof ContainerSkill>;
