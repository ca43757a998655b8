import express from 'express';
import type { Logger } from 'pino';
import type {
  Authenticator,
  Clock,
  ContainerFilesService,
  ContainersService,
  ExecService,
  FilesService,
  SkillsService,
  SessionsService,
  ContainerRestorer,
  EgressStats,
} from '@berth/core';
import {
  openApiDocument,
  type CreateContainerLimits,
  type ExecLimits,
  type SessionLimits,
} from '@berth/contracts';
import { accessLog, authenticate, requestId } from './http/request-context.js';
import { inflightLimit, isTransfer } from './http/inflight.js';
import { errorHandler, notFoundRoute } from './http/errors.js';
import { containerRoutes } from './routes/containers.js';
import { execRoutes } from './routes/exec.js';
import { fileRoutes } from './routes/files.js';
import { containerFileRoutes } from './routes/container-files.js';
import { healthRoutes, type ReadinessCheck } from './routes/health.js';
import { egressRoutes } from './routes/egress.js';
import { skillRoutes } from './routes/skills.js';
import { sessionRoutes } from './routes/sessions.js';
import { restoreRoutes } from './routes/restore.js';
import { authenticateProject } from './http/admin-auth.js';
import { adminRoutes, type AdminRoutesOptions } from './routes/admin.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { buildInfo } from './build-info.js';

export interface AppDependencies {
  logger: Logger;
  clock: Clock;
  authenticator: Authenticator;
  containers: ContainersService;
  exec: ExecService;
  files: FilesService;
  containerFiles: ContainerFilesService;
  /** /v1/skills; without it the routes are absent. */
  skills?: SkillsService;
  maxUploadBytes: number;
  /** `GET /metrics`, guarded by its own token (see metrics.ts). */
  metricsRoute: express.Router;
  /** Uploads and downloads in flight at once; past it, 429. */
  maxInflightTransfers: number;
  egressStats: (containerId: string) => EgressStats | null;
  execLimits: ExecLimits & { defaultTimeoutMs: number; maxInflightBodyBytes: number };
  readiness: Record<string, ReadinessCheck>;
  limits: CreateContainerLimits & { maxJsonBytes: number };
  /** Operators' view: request metrics, `/v1/admin/*` and `/dashboard`. */
  operators?: {
    httpMetrics: express.RequestHandler;
    admin: Omit<AdminRoutesOptions, 'egressStats' | 'clock'>;
  };
  /** Stateful Python sessions (docs/sessions.md). */
  sessions: SessionsService;
  sessionLimits: SessionLimits & { defaultTimeoutMs: number };
  /** `POST /v1/containers/{id}/restore`; absent when archiving is off. */
  restorer: ContainerRestorer | null;
}

/** The HTTP app, with every dependency passed in; main.ts is the only place that builds them. */
export function createApp(deps: AppDependencies): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use((_req, res, next) => {
    res.setHeader('x-berth-version', buildInfo.version);
    next();
  });
  app.use(requestId, accessLog(deps.logger));
  if (deps.operators) app.use(deps.operators.httpMetrics, dashboardRoutes());
  app.use(healthRoutes(deps.readiness, buildInfo));
  app.use(deps.metricsRoute);

  const v1 = express.Router();
  // The service's own contract, public like any API reference.
  const openapi = openApiDocument({
    ...deps.limits,
    ...deps.execLimits,
    maxCodeBytes: deps.sessionLimits.maxCodeBytes,
  });
  v1.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  const ops = deps.operators;
  if (ops) {
    // Before project authentication: admin keys belong to no project.
    v1.use(adminRoutes({ ...ops.admin, egressStats: deps.egressStats, clock: deps.clock }));
    v1.use(authenticateProject(deps.authenticator, ops.admin.admin));
  } else v1.use(authenticate(deps.authenticator));
  v1.use(inflightLimit(deps.maxInflightTransfers, isTransfer, 'file transfers'));
  // Before the general JSON parser: exec bodies may carry stdin larger than its limit.
  v1.use(execRoutes({ exec: deps.exec, limits: deps.execLimits }));
  v1.use(
    express.json({
      limit: deps.limits.maxJsonBytes,
      type: ['application/json', 'application/*+json'],
    }),
  );
  v1.use(containerRoutes({ containers: deps.containers, clock: deps.clock, limits: deps.limits }));
  v1.use(sessionRoutes({ sessions: deps.sessions, limits: deps.sessionLimits }));
  if (deps.restorer) v1.use(restoreRoutes({ restorer: deps.restorer, clock: deps.clock }));
  v1.use(egressRoutes({ containers: deps.containers, stats: deps.egressStats }));
  v1.use(fileRoutes({ files: deps.files, maxUploadBytes: deps.maxUploadBytes }));
  v1.use(
    containerFileRoutes({
      containerFiles: deps.containerFiles,
      maxUploadBytes: deps.maxUploadBytes,
    }),
  );
  if (deps.skills) v1.use(skillRoutes({ skills: deps.skills }));
  app.use('/v1', v1);

  app.use(notFoundRoute);
  app.use(errorHandler(deps.logger));
  return app;
}
