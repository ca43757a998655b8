import type { Express } from 'express';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createApp, type AppDependencies } from '../src/app.js';

/**
 * `/v1/openapi.json` must describe exactly what the server accepts. The app is built with inert
 * dependencies (no request is served), then its router is walked: every route must be in the
 * document, and every operation in the document must be a route.
 */
const limits = {
  maxExpiryMinutes: 90,
  maxFileIds: 100,
  maxJsonBytes: 1 << 20,
  maxAllowedDomains: 64,
};
const execLimits = {
  defaultTimeoutMs: 30_000,
  maxTimeoutMs: 600_000,
  maxStdinBytes: 1 << 20,
  maxInflightBodyBytes: 64 << 20,
};
const inert = {} as never;
const app = createApp({
  logger: pino({ level: 'silent' }),
  clock: { now: () => new Date() },
  authenticator: inert,
  containers: inert,
  exec: inert,
  files: inert,
  containerFiles: inert,
  skills: inert,
  sessions: inert,
  restorer: inert,
  sessionLimits: { defaultTimeoutMs: 30_000, maxTimeoutMs: 600_000, maxCodeBytes: 1 << 20 },
  maxUploadBytes: 1 << 20,
  metricsRoute: (_req: unknown, _res: unknown, next: () => void) => next(),
  maxInflightTransfers: 8,
  egressStats: () => null,
  execLimits,
  readiness: {},
  limits,
} as unknown as AppDependencies);

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  match(path: string): boolean;
}

/** Every (METHOD path) under /v1, path params written as `{}`. */
function v1Routes(express: Express): Set<string> {
  const root = (express as unknown as { router: { stack: Layer[] } }).router.stack;
  const out = new Set<string>();
  const visit = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const [method, on] of Object.entries(layer.route.methods)) {
          if (on && method !== '_all') out.add(`${method.toUpperCase()} ${norm(layer.route.path)}`);
        }
      } else if (layer.handle?.stack) visit(layer.handle.stack);
    }
  };
  const mounted = root.filter((l) => l.handle?.stack && l.match('/v1/x') && !l.match('/x'));
  expect(mounted).toHaveLength(1);
  visit(mounted[0]!.handle!.stack!);
  return out;
}
const norm = (path: string) => path.replace(/:[A-Za-z_]+|\{[^}]+\}/g, '{}');

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON document, probed by path
type Doc = any;

async function documented(): Promise<{ doc: Doc; ops: Set<string> }> {
  const res = await new Promise<Response>((resolve, reject) => {
    const server = app.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      fetch(`http://127.0.0.1:${port}/v1/openapi.json`)
        .then(resolve, reject)
        .finally(() => server.close());
    });
  });
  const doc = (await res.json()) as Doc;
  const ops = new Set<string>();
  for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
    for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
      if (method in item) ops.add(`${method.toUpperCase()} ${norm(path)}`);
    }
  }
  return { doc, ops };
}

describe('/v1/openapi.json against the router', () => {
  it('documents every route the router has, and no operation it lacks', async () => {
    const routes = v1Routes(app);
    const { ops } = await documented();
    expect(routes.size).toBeGreaterThan(10);
    expect(routes).toContain('GET /containers/{}/egress');
    expect(
      [...routes].filter((r) => !ops.has(r)),
      'routes missing from the document',
    ).toEqual([]);
    expect(
      [...ops].filter((o) => !routes.has(o)),
      'documented but not served',
    ).toEqual([]);
  });

  it('puts a discriminator on every oneOf whose branches are told apart by a const', async () => {
    const { doc } = await documented();
    const found: string[] = [];
    const walk = (node: unknown, at: string) => {
      if (!node || typeof node !== 'object') return;
      const n = node as Record<string, unknown>;
      if (Array.isArray(n.oneOf)) {
        found.push(at);
        expect(n.discriminator, at).toMatchObject({ propertyName: 'type' });
      }
      for (const [k, v] of Object.entries(n)) walk(v, `${at}/${k}`);
    };
    walk(doc, '');
    expect(found.some((p) => p.endsWith('network_policy'))).toBe(true);
  });

  it('states the multipart parts as the routes enforce them', async () => {
    const { doc } = await documented();
    const files = doc.paths['/files'].post.requestBody.content['multipart/form-data'];
    expect(files.schema.required).toEqual(['file', 'purpose']);
    expect(files.schema.properties.purpose.enum).toContain('user_data');
    expect(files.schema.properties.expires_after).toMatchObject({
      required: ['anchor', 'seconds'],
      properties: { seconds: { minimum: 3600, maximum: 2_592_000 } },
    });
    // The SDK sends expires_after[anchor] and expires_after[seconds].
    expect(files.encoding.expires_after).toMatchObject({ style: 'deepObject', explode: true });

    const upload = doc.paths['/containers/{container_id}/files'].post.requestBody.content;
    expect(upload['multipart/form-data'].schema.required).toEqual(['file']);
    expect(upload['application/json'].schema.required).toEqual(['file_id']);
  });
});
