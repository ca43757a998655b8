import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';

/** Node's parser codes that are not a plain 400. */
const STATUS_BY_CODE: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 413,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

const MESSAGE_BY_STATUS: Record<number, string> = {
  400: 'Malformed HTTP request.',
  408: 'The request took too long to arrive.',
  413: 'Request too large.',
  431: 'Request headers too large.',
};

/** The raw response, since no Express request exists for a request Node's parser refused. */
export function clientErrorResponse(code: string | undefined): Buffer {
  const status = (code && STATUS_BY_CODE[code]) || 400;
  const body = JSON.stringify({
    error: {
      message: MESSAGE_BY_STATUS[status] ?? 'Malformed HTTP request.',
      type: 'invalid_request_error',
      param: null,
      code: null,
    },
  });
  return Buffer.from(
    [
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Bad Request'}`,
      'Content-Type: application/json; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      `x-request-id: req_${randomBytes(16).toString('hex')}`,
      'Connection: close',
      '',
      body,
    ].join('\r\n'),
  );
}

/**
 * Answers what Node's HTTP parser refuses (oversized headers, a bad method, a request-smuggling
 * shape) in the JSON error envelope instead of Node's bare text, then closes the connection. A
 * client that reset the connection, or a socket whose response already started, gets nothing.
 */
export function installClientErrorHandler(server: Server, logger?: Logger): void {
  server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => {
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    logger?.warn({ code: error.code, msg: error.message }, 'malformed HTTP request refused');
    socket.end(clientErrorResponse(error.code));
  });
}
