import { z } from 'zod';
import { Deleted, ErrorEnvelope, ListQuery, listOf } from './common.js';
import {
  ContainerDeleted,
  ContainerList,
  ContainerResource,
  ListContainersQuery,
  createContainerBody,
} from './containers.js';
import { EgressReport } from './egress.js';
import { ExecResource, execBody } from './exec.js';
import {
  CreateSessionBody,
  SessionResource,
  SessionRunResource,
  sessionRunBody,
} from './sessions.js';
import {
  ContainerFileDeleted,
  ContainerFileList,
  ContainerFileResource,
  CreateContainerFileJson,
  FileDeleted,
  FileExpiresAfter,
  FileList,
  FileObject,
  ListFilesQuery,
} from './files.js';
import { skillPaths } from './openapi-skills.js';

/** The Files API purposes (core's FILE_PURPOSES; contracts can't import core). */
const FILE_PURPOSES = ['assistants', 'batch', 'fine-tune', 'vision', 'user_data', 'evals'];

export interface OpenApiLimits {
  maxExpiryMinutes: number;
  maxFileIds: number;
  maxTimeoutMs: number;
  maxStdinBytes: number;
  /** Largest session `code` (the JSON body limit); default 1 MiB. */
  maxCodeBytes?: number;
}

// Inlined (an empty metadata registry, so no `$defs` refs that would not resolve in OpenAPI).
const schema = (s: z.ZodType) => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(s, {
    io: 'input',
    unrepresentable: 'any',
    metadata: z.registry(),
  });
  return rest;
};
const json = (s: z.ZodType) => ({ 'application/json': { schema: schema(s) } });
const ok = (s: z.ZodType, description = 'OK') => ({ description, content: json(s) });
const errors = {
  '400': { description: 'Invalid request', content: json(ErrorEnvelope) },
  '401': { description: 'Missing or unknown API key', content: json(ErrorEnvelope) },
  '404': { description: 'Unknown id, or another project’s', content: json(ErrorEnvelope) },
  '429': {
    description:
      'rate_limit_exceeded (Retry-After: a retry can succeed) or insufficient_quota (x-should-retry: false, no Retry-After)',
    content: json(ErrorEnvelope),
  },
  '503': {
    description: 'Docker or Postgres unreachable (Retry-After)',
    content: json(ErrorEnvelope),
  },
};

function queryParams(s: z.ZodObject) {
  return Object.entries(s.shape).map(([name, field]) => ({
    name,
    in: 'query',
    required: false,
    schema: schema(field as z.ZodType),
  }));
}
const pathParams = (...names: string[]) =>
  names.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
const multipart = (
  fields: Record<string, object>,
  required: string[],
  encoding?: Record<string, object>,
) => ({
  'multipart/form-data': {
    schema: { type: 'object', properties: fields, required },
    ...(encoding ? { encoding } : {}),
  },
});

/**
 * Every `oneOf` whose branches all carry one property with a `const` (as zod's discriminated
 * unions do) gets an OpenAPI `discriminator` naming it, so generators pick the branch by it.
 */
function withDiscriminators<T>(node: T): T {
  if (Array.isArray(node)) return node.map(withDiscriminators) as T;
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = withDiscriminators(v);
  const branches = out.oneOf;
  if (Array.isArray(branches) && branches.length > 0) {
    type Branch = { properties?: Record<string, { const?: unknown }>; required?: string[] };
    const first = (branches[0] as Branch).properties ?? {};
    const key = Object.keys(first).find((name) =>
      (branches as Branch[]).every(
        (b) => b.properties?.[name]?.const !== undefined && b.required?.includes(name),
      ),
    );
    if (key) out.discriminator = { propertyName: key };
  }
  return out as T;
}

/** The service's own OpenAPI 3.1 document, generated from the same zod schemas the routes use. */
export function openApiDocument(limits: OpenApiLimits, version = '0.1.0') {
  return withDiscriminators(document(limits, version));
}

function document(limits: OpenApiLimits, version: string) {
  const binary = {
    description: 'The file bytes',
    content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Berth',
      version,
      description:
        'A self-hosted implementation of the OpenAI Containers API. Marked (ours): beyond upstream.',
    },
    servers: [{ url: '/v1' }],
    security: [{ bearer: [] }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths: {
      '/openapi.json': {
        get: {
          operationId: 'GetOpenApiDocument',
          description: '(ours) This document. Public: no API key needed.',
          security: [],
          responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': {} } } },
        },
      },
      '/containers': {
        get: {
          operationId: 'ListContainers',
          parameters: queryParams(ListContainersQuery),
          responses: { '200': ok(ContainerList), ...errors },
        },
        post: {
          operationId: 'CreateContainer',
          requestBody: { required: true, content: json(createContainerBody(limits)) },
          responses: { '200': ok(ContainerResource), ...errors },
        },
      },
      '/containers/{container_id}': {
        parameters: pathParams('container_id'),
        get: {
          operationId: 'RetrieveContainer',
          responses: { '200': ok(ContainerResource), ...errors },
        },
        delete: {
          operationId: 'DeleteContainer',
          responses: { '200': ok(ContainerDeleted), ...errors },
        },
      },
      '/containers/{container_id}/exec': {
        parameters: pathParams('container_id'),
        post: {
          operationId: 'CreateContainerExec',
          description:
            '(ours) Runs a command in the container; `stream: true` answers text/event-stream.',
          requestBody: { required: true, content: json(execBody(limits)) },
          responses: {
            '200': {
              description: 'The result, or an event stream',
              content: {
                ...json(ExecResource),
                'text/event-stream': { schema: { type: 'string' } },
              },
            },
            ...errors,
          },
        },
      },
      '/containers/{container_id}/egress': {
        parameters: pathParams('container_id'),
        get: {
          operationId: 'RetrieveContainerEgress',
          description:
            '(ours) What the sandbox tried to reach through the egress proxy, allowed and denied, since this API process started.',
          responses: { '200': ok(EgressReport), ...errors },
        },
      },
      '/containers/{container_id}/sessions': {
        parameters: pathParams('container_id'),
        get: {
          operationId: 'ListContainerSessions',
          description: '(ours) The Python sessions of the container, oldest first.',
          responses: { '200': ok(listOf(SessionResource, 'ContainerSessionList')), ...errors },
        },
        post: {
          operationId: 'CreateContainerSession',
          description: '(ours) Starts a stateful Python interpreter in the container.',
          requestBody: { required: false, content: json(CreateSessionBody) },
          responses: { '200': ok(SessionResource), ...errors },
        },
      },
      '/containers/{container_id}/sessions/{session_id}': {
        parameters: pathParams('container_id', 'session_id'),
        get: {
          operationId: 'RetrieveContainerSession',
          responses: { '200': ok(SessionResource), ...errors },
        },
        delete: {
          operationId: 'DeleteContainerSession',
          responses: {
            '200': ok(Deleted('container.session.deleted', 'ContainerSessionDeleted')),
            ...errors,
          },
        },
      },
      '/containers/{container_id}/sessions/{session_id}/run': {
        parameters: pathParams('container_id', 'session_id'),
        post: {
          operationId: 'RunContainerSession',
          description:
            '(ours) Runs Python code in the session; `stream: true` answers text/event-stream.',
          requestBody: {
            required: true,
            content: json(
              sessionRunBody({
                maxTimeoutMs: limits.maxTimeoutMs,
                maxCodeBytes: limits.maxCodeBytes ?? 1_048_576,
              }),
            ),
          },
          responses: {
            '200': {
              description: 'The result, or an event stream',
              content: {
                ...json(SessionRunResource),
                'text/event-stream': { schema: { type: 'string' } },
              },
            },
            '409': { description: 'The session is running code', content: json(ErrorEnvelope) },
            ...errors,
          },
        },
      },
      '/containers/{container_id}/sessions/{session_id}/restart': {
        parameters: pathParams('container_id', 'session_id'),
        post: {
          operationId: 'RestartContainerSession',
          description: '(ours) A fresh interpreter for the session; its state is gone.',
          responses: { '200': ok(SessionResource), ...errors },
        },
      },
      '/containers/{container_id}/restore': {
        parameters: pathParams('container_id'),
        post: {
          operationId: 'RestoreContainer',
          description:
            '(ours) A new running container with the settings of an expired one and its archived /mnt/data.',
          responses: { '200': ok(ContainerResource), ...errors },
        },
      },
      '/containers/{container_id}/files': {
        parameters: pathParams('container_id'),
        get: {
          operationId: 'ListContainerFiles',
          parameters: queryParams(ListQuery),
          responses: { '200': ok(ContainerFileList), ...errors },
        },
        post: {
          operationId: 'CreateContainerFile',
          requestBody: {
            required: true,
            content: {
              ...multipart(
                {
                  path: {
                    type: 'string',
                    description:
                      '(ours) Where under /mnt/data: a file path, or a directory ending in `/`. Send it before `file`: a field after the file part is not seen.',
                  },
                  file: {
                    type: 'string',
                    format: 'binary',
                    description:
                      'Exactly one part. Its filename must be a plain name (no directory, `..`, control characters; at most 255 bytes).',
                  },
                },
                ['file'],
              ),
              ...json(CreateContainerFileJson),
            },
          },
          responses: {
            '200': ok(ContainerFileResource),
            '413': { description: 'Too large', content: json(ErrorEnvelope) },
            ...errors,
          },
        },
      },
      '/containers/{container_id}/files/{file_id}': {
        parameters: pathParams('container_id', 'file_id'),
        get: {
          operationId: 'RetrieveContainerFile',
          responses: { '200': ok(ContainerFileResource), ...errors },
        },
        delete: {
          operationId: 'DeleteContainerFile',
          responses: { '200': ok(ContainerFileDeleted), ...errors },
        },
      },
      '/containers/{container_id}/files/{file_id}/content': {
        parameters: pathParams('container_id', 'file_id'),
        get: {
          operationId: 'RetrieveContainerFileContent',
          responses: { '200': binary, ...errors },
        },
      },
      '/files': {
        get: {
          operationId: 'ListFiles',
          parameters: queryParams(ListFilesQuery),
          responses: { '200': ok(FileList), ...errors },
        },
        post: {
          operationId: 'CreateFile',
          requestBody: {
            required: true,
            content: multipart(
              {
                file: {
                  type: 'string',
                  format: 'binary',
                  description:
                    'Exactly one part. Its filename must be a plain name (no directory, `..`, control characters, not starting with `.berth-upload-`; at most 255 bytes).',
                },
                purpose: { type: 'string', enum: FILE_PURPOSES },
                expires_after: {
                  ...schema(FileExpiresAfter),
                  description:
                    'Sent as the fields expires_after[anchor] and expires_after[seconds]. The file answers 404 from created_at + seconds on.',
                },
              },
              ['file', 'purpose'],
              { expires_after: { style: 'deepObject', explode: true } },
            ),
          },
          responses: {
            '200': ok(FileObject),
            '413': { description: 'Too large', content: json(ErrorEnvelope) },
            ...errors,
          },
        },
      },
      '/files/{file_id}': {
        parameters: pathParams('file_id'),
        get: { operationId: 'RetrieveFile', responses: { '200': ok(FileObject), ...errors } },
        delete: { operationId: 'DeleteFile', responses: { '200': ok(FileDeleted), ...errors } },
      },
      '/files/{file_id}/content': {
        parameters: pathParams('file_id'),
        get: { operationId: 'DownloadFile', responses: { '200': binary, ...errors } },
      },
      ...skillPaths({ ok, json, errors, pathParams, queryParams, multipart }),
    },
  };
}
