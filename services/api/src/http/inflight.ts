import type { Request, RequestHandler } from 'express';
import { RateLimitError } from '@berth/core';

/** Whether a request moves file bytes: an upload or a download, of either files API. */
export const isTransfer = (req: Request): boolean =>
  (req.method === 'POST' &&
    /^\/(files|containers\/[^/]+\/files|skills|skills\/[^/]+\/versions)\/?$/.test(req.path)) ||
  (req.method === 'GET' &&
    (/^\/(files|containers\/[^/]+\/files)\/[^/]+\/content\/?$/.test(req.path) ||
      /^\/skills\/[^/]+(\/versions\/[^/]+)?\/content\/?$/.test(req.path)));

/**
 * Caps requests of one kind in flight in this process: past `max`, 429 with Retry-After before
 * anything is read, so a flood of transfers can't pin every socket and buffer of the API.
 */
export function inflightLimit(
  max: number,
  applies: (req: Request) => boolean,
  what: string,
): RequestHandler {
  let current = 0;
  return (req, res, next) => {
    if (!applies(req)) return next();
    if (current >= max) {
      next(
        new RateLimitError(
          `This server is handling ${current} ${what} at once, the most it takes. Retry shortly.`,
        ),
      );
      return;
    }
    current += 1;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      current -= 1;
    };
    res.once('finish', release);
    res.once('close', release);
    next();
  };
}
