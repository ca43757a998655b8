import type { ErrorRequestHandler, RequestHandler } from 'express';
import { BerthError, NotFoundError, InvalidRequestError, PayloadTooLargeError } from '@berth/core';
import type { Logger } from 'pino';

/** A 415 in the envelope: the body is in an encoding or charset this server does not read. */
export const unsupportedMediaType = (message: string, cause?: unknown) =>
  new BerthError(415, 'invalid_request_error', message, { cause });

/**
 * Errors from the router, body-parser and multer are the client's mistake they describe; map them
 * to the envelope. Anything that carries a 4xx `status` (http-errors, the router's URIError for a
 * bad percent-escape) is a 4xx here too, never a 500.
 */
function fromParserError(error: unknown): BerthError | null {
  const e = error as {
    type?: string;
    status?: number;
    code?: string;
    name?: string;
    field?: string;
  } | null;
  if (e?.name === 'MulterError') {
    if (e.code === 'LIMIT_FILE_SIZE') return new PayloadTooLargeError('File too large.');
    if (e.code === 'LIMIT_UNEXPECTED_FILE') {
      return new InvalidRequestError(
        `Unexpected file part '${e.field ?? ''}': send the file as the part 'file'.`,
        { param: e.field ?? null },
      );
    }
    if (e.code === 'LIMIT_FILE_COUNT') {
      return new InvalidRequestError("Send exactly one part 'file'.", { param: 'file' });
    }
    return new InvalidRequestError(`Malformed multipart body (${e.code ?? 'error'}).`);
  }
  if (e?.type === 'entity.parse.failed') {
    return new InvalidRequestError(
      'We could not parse the JSON body of your request. Send valid JSON with Content-Type: application/json.',
    );
  }
  if (e?.type === 'entity.too.large' || e?.code === 'LIMIT_FILE_SIZE') {
    return new PayloadTooLargeError('Request body too large.');
  }
  if (e?.type === 'encoding.unsupported') {
    return unsupportedMediaType(
      'Unsupported Content-Encoding: send identity, gzip, deflate or br.',
    );
  }
  if (e?.type === 'charset.unsupported') {
    return unsupportedMediaType('Unsupported charset: send the body as UTF-8.');
  }
  if (typeof e?.status !== 'number' || e.status < 400 || e.status >= 500) return null;
  if (error instanceof URIError) {
    return new InvalidRequestError('Malformed percent-encoding in the URL path.', { cause: error });
  }
  if (e.status === 413) return new PayloadTooLargeError('Request body too large.');
  if (e.status === 415) return unsupportedMediaType('Unsupported request body encoding.');
  if (typeof e.code === 'string' && e.code.startsWith('Z_')) {
    return new InvalidRequestError(
      'The request body could not be decompressed: it does not match its Content-Encoding.',
    );
  }
  return new InvalidRequestError('Malformed request body.');
}

export const notFoundRoute: RequestHandler = (req, _res, next) => {
  next(new NotFoundError(`Invalid URL (${req.method} ${req.path})`));
};

/** The one place errors become responses, always in OpenAI's envelope. */
export const errorHandler =
  (logger: Logger): ErrorRequestHandler =>
  (error, req, res, next) => {
    if (res.headersSent) {
      logger.warn({ err: error, requestId: req.id }, 'error after response started');
      res.destroy();
      return;
    }
    const known = error instanceof BerthError ? error : fromParserError(error);
    if (known) {
      // Expected outcomes (client mistakes, a dependency down: 503) are warnings; a 5xx that
      // says something is broken here (504: a wedged sandbox) is an error.
      const log =
        known.status >= 500 && known.status !== 503
          ? logger.error.bind(logger)
          : logger.warn.bind(logger);
      log(
        {
          requestId: req.id,
          status: known.status,
          code: known.code,
          cause: known.cause ?? undefined,
          reason: known.message,
        },
        'request failed',
      );
      if (known.retryAfter !== undefined) res.setHeader('Retry-After', String(known.retryAfter));
      if (known.shouldRetry !== undefined)
        res.setHeader('x-should-retry', String(known.shouldRetry));
      res.status(known.status).json({
        error: { message: known.message, type: known.type, param: known.param, code: known.code },
      });
      return;
    }
    logger.error({ err: error, requestId: req.id }, 'unhandled error');
    res.status(500).json({
      error: {
        message: 'The server had an error while processing your request. Sorry about that!',
        type: 'server_error',
        param: null,
        code: null,
      },
    });
    void next;
  };
