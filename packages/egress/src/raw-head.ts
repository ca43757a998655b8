import { HOP_BY_HOP } from './http-relay.js';

/** An upstream answer head longer than this (node's own default limit) is refused. */
export const MAX_RESPONSE_HEAD = 16 * 1024;

/** Where the body of a raw-relayed answer ends, as the proxy sees it. */
export type BodyEnd =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  /** Chunked (relayed with its framing, the client decodes it) or read until the upstream closes. */
  | { kind: 'close' };

export interface ResponseHead {
  status: number;
  /** The head for the client: end-to-end fields as the upstream wrote them, `connection: close`. */
  text: string;
  body: BodyEnd;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values and reason phrases: visible characters, space, tab and obs-text; no controls.
const TEXT = /^[\t\x20-\x7e\x80-\xff]*$/;
// The fields a raw body's framing rests on: never dropped, whatever `Connection` names.
const FRAMING = new Set(['content-length', 'transfer-encoding']);

/** The field names a `Connection` header lists (RFC 9110 §7.6.1): hop-by-hop too. */
export function connectionNamed(values: readonly string[]): Set<string> {
  return new Set(
    values.flatMap((v) => v.split(',').map((t) => t.trim().toLowerCase())).filter(Boolean),
  );
}

/**
 * The request head sent upstream for a plain HTTP forward: the client's end-to-end fields in
 * their order and spelling (node's parser has already refused malformed ones), the URL's `Host`,
 * `transfer-encoding: chunked` when the body is re-chunked, and `connection: close` (one exchange
 * per upstream connection, so the upstream's close ends a body that has no length). `http10`: the
 * client's own version was 1.0.
 */
export function requestHead(
  method: string,
  path: string,
  host: string,
  rawHeaders: readonly string[],
  chunked: boolean,
  http10 = false,
): string {
  const named = connectionNamed(
    rawHeaders.filter((_, i) => i % 2 === 1 && rawHeaders[i - 1]!.toLowerCase() === 'connection'),
  );
  // An HTTP/1.0 client can't read a chunked answer, which the raw relay passes on as it came:
  // asked in 1.0, the upstream frames its answer by length or by its close instead.
  let text = `${method} ${path} HTTP/1.${http10 ? 0 : 1}\r\nHost: ${host}\r\n`;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (name === 'host' || HOP_BY_HOP.has(name) || named.has(name)) continue;
    if (chunked && name === 'content-length') continue;
    text += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  }
  return `${text}${chunked ? 'Transfer-Encoding: chunked\r\n' : ''}Connection: close\r\n\r\n`;
}

/**
 * Reads one upstream answer head (`head`: the bytes before its CRLFCRLF, latin1) and rewrites it
 * for the client, whose connection closes after it: hop-by-hop fields dropped except
 * `transfer-encoding`, since the body goes on in the upstream's own framing. Throws, with what is
 * wrong, on anything but a well-formed HTTP/1.x head.
 */
export function responseHead(head: string, method: string): ResponseHead {
  const lines = head.split('\r\n');
  const start = /^HTTP\/1\.[01] ([1-5]\d\d)(?: (.*))?$/.exec(lines[0]!);
  if (!start || !TEXT.test(start[2] ?? '')) throw new Error('the answer is not HTTP/1.x');
  const status = Number(start[1]);
  if (status === 101) throw new Error('the answer switches protocols, which was not asked for');
  const fields: [string, string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (colon < 1 || !TOKEN.test(name) || !TEXT.test(value))
      throw new Error('the answer has a malformed header line');
    fields.push([name.toLowerCase(), value, line]);
  }
  const all = (n: string) => fields.filter(([f]) => f === n).map(([, v]) => v);
  const named = connectionNamed(all('connection'));
  const coded = all('transfer-encoding').length > 0;
  const lengths = new Set(all('content-length').flatMap((v) => v.split(',').map((t) => t.trim())));
  const [length] = lengths;
  if (!coded && (lengths.size > 1 || (length !== undefined && !/^\d{1,15}$/.test(length))))
    throw new Error('the answer has a malformed content-length');

  let text = `HTTP/1.1 ${status} ${start[2] ?? ''}\r\n`;
  for (const [name, , line] of fields) {
    if (coded && name === 'content-length') continue; // transfer-encoding frames it (RFC 9112 §6.3)
    if (!FRAMING.has(name) && (HOP_BY_HOP.has(name) || named.has(name))) continue;
    text += `${line}\r\n`;
  }
  text += 'Connection: close\r\n\r\n';
  const body: BodyEnd =
    method === 'HEAD' || status < 200 || status === 204 || status === 304
      ? { kind: 'none' }
      : !coded && length !== undefined
        ? { kind: 'length', length: Number(length) }
        : { kind: 'close' };
  return { status, text, body };
}
