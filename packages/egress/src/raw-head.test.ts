import { describe, expect, it } from 'vitest';
import { requestHead, responseHead } from './raw-head.js';

describe('requestHead', () => {
  it('keeps end-to-end fields as written, drops hop-by-hop ones and those Connection names', () => {
    const head = requestHead(
      'PUT',
      '/a?b=1',
      'web.test:8080',
      [
        'Host',
        'other',
        'X-A',
        '1',
        'Connection',
        'x-b',
        'X-B',
        '2',
        'Keep-Alive',
        '5',
        'Content-Length',
        '3',
      ],
      false,
    );
    expect(head).toBe(
      'PUT /a?b=1 HTTP/1.1\r\nHost: web.test:8080\r\nX-A: 1\r\nContent-Length: 3\r\nConnection: close\r\n\r\n',
    );
  });

  it('frames a chunked body chunked, and never with a length too', () => {
    const head = requestHead('POST', '/', 'web.test', ['Transfer-Encoding', 'chunked'], true);
    expect(head).toBe(
      'POST / HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
    );
  });
});

describe('responseHead', () => {
  it('rewrites the head for a connection that closes after it', () => {
    const head = responseHead(
      'HTTP/1.0 200 Fine\r\nConnection: keep-alive, x-hop\r\nX-Hop: 1\r\nX-Kept: a:b\r\nContent-Length: 7',
      'GET',
    );
    expect(head).toEqual({
      status: 200,
      text: 'HTTP/1.1 200 Fine\r\nX-Kept: a:b\r\nContent-Length: 7\r\nConnection: close\r\n\r\n',
      body: { kind: 'length', length: 7 },
    });
  });

  it('keeps transfer-encoding and drops a length beside it; reads to the close without either', () => {
    const chunked = responseHead(
      'HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked',
      'GET',
    );
    expect(chunked.text).toBe(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
    );
    expect(chunked.body).toEqual({ kind: 'close' });
    expect(responseHead('HTTP/1.1 200', 'GET').body).toEqual({ kind: 'close' });
  });

  it('has no body for HEAD, 1xx, 204 and 304', () => {
    expect(responseHead('HTTP/1.1 200 OK\r\nContent-Length: 5', 'HEAD').body).toEqual({
      kind: 'none',
    });
    for (const status of [100, 103, 204, 304])
      expect(responseHead(`HTTP/1.1 ${status} X`, 'GET').body).toEqual({ kind: 'none' });
  });

  it('refuses what is not a well-formed HTTP/1.x head', () => {
    for (const bad of [
      'SSH-2.0-OpenSSH',
      'HTTP/2 200 OK',
      'HTTP/1.1 600 Odd',
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket',
      'HTTP/1.1 200 OK\r\nNo colon here',
      'HTTP/1.1 200 OK\r\n folded: value',
      'HTTP/1.1 200 OK\r\nX-Bad: a\u0000b',
      'HTTP/1.1 200 OK\r\nX-Bad: a\nInjected: b',
      'HTTP/1.1 200 OK\r\nContent-Length: 1, 2',
      'HTTP/1.1 200 OK\r\nContent-Length: -1',
    ])
      expect(() => responseHead(bad, 'GET'), bad).toThrow();
  });
});
