import { randomBytes } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { Authenticator } from '@berth/core';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      id: string;
      projectId: string;
    }
  }
}

const SAFE_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** Every response carries x-request-id (the client's, when it is a sane token). */
export const requestId: RequestHandler = (req, res, next) => {
  const incoming = req.header('x-request-id');
  req.id = incoming && SAFE_ID.test(incoming) ? incoming : `req_${randomBytes(16).toString('hex')}`;
  res.setHeader('x-request-id', req.id);
  next();
};

/** One JSON line per request, after it ends. */
export const accessLog =
  (logger: Logger): RequestHandler =>
  (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      // originalUrl, not path: inside a mounted router (/v1) express strips the mount point from
      // req.path, so the same route would log as /containers here and /v1/containers there.
      const path = req.originalUrl.split('?', 1)[0];
      // Health probes (compose, Kubernetes) every few seconds would drown the log at info; a
      // failing one still shows.
      const probe = (path === '/healthz' || path === '/readyz') && res.statusCode < 500;
      const level = probe ? 'debug' : 'info';
      logger[level](
        {
          requestId: req.id,
          method: req.method,
          path,
          status: res.statusCode,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
          projectId: req.projectId,
        },
        'request',
      );
    });
    next();
  };

export const authenticate =
  (authenticator: Authenticator): RequestHandler =>
  (req, _res, next) => {
    authenticator.authenticate(req.header('authorization')).then((projectId) => {
      req.projectId = projectId;
      next();
    }, next);
  };
