import type { RequestHandler } from 'express';
import {
  AuthenticationError,
  BerthError,
  hashApiKey,
  NotFoundError,
  type AdminStore,
  type Authenticator,
} from '@berth/core';

const bearer = (authorization: string | undefined): string | null =>
  /^Bearer\s+(\S{1,512})\s*$/i.exec(authorization ?? '')?.[1] ?? null;

/**
 * Guards `/v1/admin/*`: anything but an active admin key (no key, a project key, a revoked key)
 * gets the same 404 an unknown URL gets, so the admin API's existence is not advertised.
 */
export const requireAdmin =
  (admin: Pick<AdminStore, 'isAdminKey'>): RequestHandler =>
  (req, _res, next) => {
    const key = bearer(req.header('authorization'));
    const notFound = () =>
      new NotFoundError(`Invalid URL (${req.method} ${req.originalUrl.split('?')[0] ?? ''})`);
    if (!key) {
      next(notFound());
      return;
    }
    admin.isAdminKey(hashApiKey(key)).then(
      (ok) => next(ok ? undefined : notFound()),
      (error: unknown) => next(error),
    );
  };

/**
 * The project routes' authentication, telling an admin key apart from a wrong key: an admin key
 * is valid but belongs to no project, so it may not create, exec or delete (403, not 401, so a
 * client does not retry with the same key believing it mistyped). Only failed lookups pay for
 * the second query.
 */
export const authenticateProject =
  (authenticator: Authenticator, admin: Pick<AdminStore, 'isAdminKey'>): RequestHandler =>
  (req, _res, next) => {
    authenticator.authenticate(req.header('authorization')).then(
      (projectId) => {
        req.projectId = projectId;
        next();
      },
      async (error: unknown) => {
        const key = bearer(req.header('authorization'));
        if (error instanceof AuthenticationError && key) {
          const isAdmin = await admin.isAdminKey(hashApiKey(key)).catch(() => false);
          if (isAdmin) {
            next(
              new BerthError(
                403,
                'invalid_request_error',
                'This is an admin key: it reads /v1/admin and cannot act on containers or files. Use a project key.',
                { code: 'admin_key_not_allowed' },
              ),
            );
            return;
          }
        }
        next(error);
      },
    );
  };
