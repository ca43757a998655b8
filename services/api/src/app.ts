import express from 'express';
import type { Logger } from 'pino';
import type {
  Authenticator,
  Clock,
  ContainerFilesService,
  ContainersService,
  ExecService,
  FilesService,
} from '@berth/core';
import { openApiDocument, type CreateContainerLimits, type ExecLimits } from '@berth/contracts';
import { accessLog, authenticate, requestId } from './http/request-context.js';
import { inflightLimit, isTransfer } from './http/inflight.js';
import { errorHandler, notFoundRoute } from './http/errors.js';
import { containerRoutes } from './routes/containers.js';
import { execRoutes } from './routes/exec.js';
import { fileRoutes } from './routes/files.js';
import { containerFileRoutes } from './routes/container-files.js';
import { healthRoutes, type ReadinessCheck } from './routes/health.js';
import { egressRoutes } from './routes/egress.js';
import type { EgressStats } from '@berth/egress';
import { buildInfo } from './build-info.js';

export interface AppDependencies {
  logger: Logger;
  clock: Clock;
  authenticator: Authenticator;
  containers: ContainersService;
  exec: ExecService;
  files: FilesService;
  containerFiles: ContainerFilesService;
  maxUploadBytes: number;
  /** `GET /metrics`, guarded by its own token (see metrics.ts). */
  metricsRoute: express.Router;
  /** Uploads and downloads in flight at once; past it, 429. */
  maxInflightTransfers: number;
  egressStats: (containerId: string) => EgressStats | null;
  execLimits: ExecLimits & { defaultTimeoutMs: number; maxInflightBodyBytes: number };
  readiness: Record<string, ReadinessCheck>;
  limits: CreateContainerLimits & { maxJsonBytes: number; maxAllowedDomains: number };
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
  app.use(healthRoutes(deps.readiness, buildInfo));
  app.use(deps.metricsRoute);

  const v1 = express.Router();
  // The service's own contract, public like any API reference.
  const openapi = openApiDocument({ ...deps.limits, ...deps.execLimits });
  v1.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  v1.use(authenticate(deps.authenticator));
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
  v1.use(egressRoutes({ containers: deps.containers, stats: deps.egressStats }));
  v1.use(fileRoutes({ files: deps.files, maxUploadBytes: deps.maxUploadBytes }));
  v1.use(
    containerFileRoutes({
      containerFiles: deps.containerFiles,
      maxUploadBytes: deps.maxUploadBytes,
    }),
  );
  app.use('/v1', v1);

  app.use(notFoundRoute);
  app.use(errorHandler(deps.logger));
  return app;
}
