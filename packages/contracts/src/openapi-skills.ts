import type { z } from 'zod';
import { ErrorEnvelope, ListQuery } from './common.js';
import {
  SkillDeleted,
  SkillList,
  SkillResource,
  SkillVersionDeleted,
  SkillVersionList,
  SkillVersionResource,
  UpdateSkillBody,
} from './skills.js';

/** The document's own builders, passed in so both files render schemas one way. */
export interface OpenApiBuilders {
  ok(s: z.ZodType, description?: string): object;
  json(s: z.ZodType): object;
  errors: Record<string, object>;
  pathParams(...names: string[]): object[];
  queryParams(s: z.ZodObject): object[];
  multipart(fields: Record<string, object>, required: string[]): object;
}

const zipBody = {
  description: 'The bundle as a zip',
  content: { 'application/zip': { schema: { type: 'string', format: 'binary' } } },
};

/** /v1/skills and its versions. */
export function skillPaths(b: OpenApiBuilders) {
  const files = {
    type: 'array',
    items: { type: 'string', format: 'binary' },
    maxItems: 500,
    description:
      "One zip, or a directory's files named by their paths (`my-skill/SKILL.md`); SDKs send the part as `files[]`. Exactly one SKILL.md with `name` and `description` front matter; at most 50 MB in total, 500 files, 25 MB a file.",
  };
  const upload = (extra: Record<string, object> = {}) => ({
    required: true,
    content: b.multipart({ files, ...extra }, ['files']),
  });
  const tooLarge = { '413': { description: 'Too large', content: b.json(ErrorEnvelope) } };
  return {
    '/skills': {
      get: {
        operationId: 'ListSkills',
        parameters: b.queryParams(ListQuery),
        responses: { '200': b.ok(SkillList), ...b.errors },
      },
      post: {
        operationId: 'CreateSkill',
        requestBody: upload(),
        responses: { '200': b.ok(SkillResource), ...tooLarge, ...b.errors },
      },
    },
    '/skills/{skill_id}': {
      parameters: b.pathParams('skill_id'),
      get: { operationId: 'GetSkill', responses: { '200': b.ok(SkillResource), ...b.errors } },
      post: {
        operationId: 'UpdateSkillDefaultVersion',
        requestBody: { required: true, content: b.json(UpdateSkillBody) },
        responses: { '200': b.ok(SkillResource), ...b.errors },
      },
      delete: {
        operationId: 'DeleteSkill',
        responses: { '200': b.ok(SkillDeleted), ...b.errors },
      },
    },
    '/skills/{skill_id}/content': {
      parameters: b.pathParams('skill_id'),
      get: {
        operationId: 'GetSkillContent',
        description: "The default version's bundle.",
        responses: { '200': zipBody, ...b.errors },
      },
    },
    '/skills/{skill_id}/versions': {
      parameters: b.pathParams('skill_id'),
      get: {
        operationId: 'ListSkillVersions',
        description: 'Ordered by version number; `after` is a version id.',
        parameters: b.queryParams(ListQuery),
        responses: { '200': b.ok(SkillVersionList), ...b.errors },
      },
      post: {
        operationId: 'CreateSkillVersion',
        requestBody: upload({
          default: { type: 'boolean', description: 'Make this version the default.' },
        }),
        responses: { '200': b.ok(SkillVersionResource), ...tooLarge, ...b.errors },
      },
    },
    '/skills/{skill_id}/versions/{version}': {
      parameters: b.pathParams('skill_id', 'version'),
      get: {
        operationId: 'GetSkillVersion',
        description: '`version` is a number, or `latest`.',
        responses: { '200': b.ok(SkillVersionResource), ...b.errors },
      },
      delete: {
        operationId: 'DeleteSkillVersion',
        description: 'The default version cannot be deleted (400).',
        responses: { '200': b.ok(SkillVersionDeleted), ...b.errors },
      },
    },
    '/skills/{skill_id}/versions/{version}/content': {
      parameters: b.pathParams('skill_id', 'version'),
      get: {
        operationId: 'GetSkillVersionContent',
        responses: { '200': zipBody, ...b.errors },
      },
    },
  };
}
