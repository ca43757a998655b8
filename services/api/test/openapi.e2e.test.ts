import { describe, expect } from 'vitest';
import { berthTest } from './fixtures.js';

const it = berthTest({ BERTH_MAX_EXPIRY_MINUTES: '90' });

/** The parts of the document the first test reads. */
interface Document {
  openapi: string;
  paths: {
    '/containers': {
      post: { requestBody: { content: { 'application/json': { schema: CreateSchema } } } };
    };
  };
}
interface CreateSchema {
  properties: {
    memory_limit: { enum: string[] };
    expires_after: { properties: { minutes: { maximum: number } } };
  };
  required: string[];
  additionalProperties: boolean;
}

describe('GET /v1/openapi.json', () => {
  it('serves the OpenAPI 3.1 document, generated from the schemas the routes validate with', async ({
    berth,
  }) => {
    const res = await fetch(`${berth.url}/v1/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Document;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/containers',
        '/containers/{container_id}',
        '/containers/{container_id}/exec',
        '/containers/{container_id}/files',
        '/files',
      ]),
    );
    const create = doc.paths['/containers'].post.requestBody.content['application/json'].schema;
    expect(create.properties.memory_limit.enum).toEqual(['1g', '4g', '16g', '64g']);
    // Built with this server's settings: the expiry bound is the configured one, not upstream's 20.
    expect(create.properties.expires_after.properties.minutes.maximum).toBe(90);
    expect(create.required).toEqual(['name']);
    expect(create.additionalProperties).toBe(false);
  });

  it('documents every route the API answers (each path is reachable, not 404 Invalid URL)', async ({
    berth,
  }) => {
    const doc = (await (await fetch(`${berth.url}/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
      for (const method of ['get', 'post', 'delete'].filter((m) => m in item)) {
        const url = path
          .replace('{container_id}', 'cntr_' + '0'.repeat(48))
          .replace('{file_id}', 'file-' + '0'.repeat(32));
        const res = await berth.api(`/v1${url}`, { method: method.toUpperCase() });
        const body = (await res.json().catch(() => ({}))) as { error?: { message: string } } | null;
        expect(body?.error?.message ?? '', `${method} ${path}`).not.toMatch(/^Invalid URL/);
      }
    }
  });
});
