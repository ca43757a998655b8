import { gzipSync } from 'node:zlib';
import fc from 'fast-check';

/** The subset of JSON Schema that openapi.ts emits. */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  format?: string;
}

/** Percent-encodes any string, lone surrogates too (as UTF-8's replacement character). */
export const pct = (s: string): string =>
  [...Buffer.from(s, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9_.~-]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');

/** Strings that have broken parsers, stores or file systems before. */
export const nastyString = fc.oneof(
  fc.constantFrom(
    '\u0000',
    'a\u0000b',
    '\uD800',
    '\uFFFF',
    '%00',
    '%ZZ',
    '..',
    '../../etc/passwd',
    '/',
    '\\',
    '\r\n',
    '"',
    "'",
    '${x}',
    '$(id)',
    '<script>',
    '🙂',
    ' ',
    '',
  ),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.nat({ max: 200_000 }).map((n) => 'x'.repeat(n)),
);

/** Any JSON value, weighted toward the types a schema did not ask for. */
export const junkValue: fc.Arbitrary<unknown> = fc.oneof(
  nastyString,
  fc.constantFrom(null, true, false, 0, -1, 1e308, -0, 2 ** 53 + 1, 1.5, [], {}),
  fc.jsonValue({ maxDepth: 3 }),
);

/** A value the schema accepts in shape (it may still be refused for what it means). */
export function fromSchema(schema: JsonSchema, depth = 0): fc.Arbitrary<unknown> {
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) return fc.oneof(...alternatives.map((s) => fromSchema(s, depth + 1)));
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'string':
      return fc.string({
        minLength: schema.minLength ?? 0,
        maxLength: Math.min(schema.maxLength ?? 40, 40),
      });
    case 'integer':
      return fc.integer({
        min: Math.max(schema.minimum ?? -1000, -(2 ** 31)),
        max: Math.min(schema.maximum ?? 1000, 2 ** 31),
      });
    case 'number':
      return fc.double({ min: schema.minimum ?? -1000, max: schema.maximum ?? 1000, noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'array':
      return depth > 4
        ? fc.constant([])
        : fc.array(fromSchema(schema.items ?? {}, depth + 1), {
            minLength: schema.minItems ?? 0,
            maxLength: Math.min(schema.maxItems ?? 3, 3),
          });
    case 'object': {
      if (depth > 4) return fc.constant({});
      const props = schema.properties ?? {};
      const required = new Set(schema.required ?? []);
      const record: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [k, s] of Object.entries(props)) record[k] = fromSchema(s, depth + 1);
      if (Object.keys(props).length === 0 && typeof schema.additionalProperties === 'object') {
        return fc.dictionary(
          fc.string({ minLength: 1, maxLength: 10 }),
          fromSchema(schema.additionalProperties, depth + 1),
          { maxKeys: 3 },
        );
      }
      return fc.record(record, {
        requiredKeys: Object.keys(props).filter((k) => required.has(k)),
      });
    }
    default:
      return junkValue;
  }
}

/** Breaks a valid-shaped value in one place: a junk leaf, a dropped key, an unknown key. */
export function mutate(value: unknown): fc.Arbitrary<unknown> {
  const paths: (string | number)[][] = [];
  const walk = (v: unknown, path: (string | number)[]) => {
    paths.push(path);
    if (path.length > 8) return;
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(value, []);
  const setAt = (root: unknown, path: (string | number)[], leaf: unknown, drop: boolean) => {
    if (path.length === 0) return drop ? undefined : leaf;
    const copy = structuredClone(root) as Record<string | number, unknown>;
    let node = copy;
    for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
    const last = path.at(-1)!;
    if (drop && !Array.isArray(node)) delete node[last];
    else node[last] = leaf;
    return copy;
  };
  return fc.oneof(
    fc
      .tuple(fc.constantFrom(...paths), junkValue)
      .map(([path, leaf]) => setAt(value, path, leaf, false)),
    fc.constantFrom(...paths).map((path) => setAt(value, path, undefined, true)),
    fc
      .tuple(fc.string({ maxLength: 12 }), junkValue)
      .map(([k, v]) =>
        value && typeof value === 'object' && !Array.isArray(value) ? { ...value, [k]: v } : v,
      ),
  );
}

/** A body as bytes, with the headers that go with it. */
export interface Body {
  headers: Record<string, string>;
  bytes: Buffer;
}

const json = (v: unknown): Body => ({
  headers: { 'content-type': 'application/json' },
  bytes: Buffer.from(JSON.stringify(v) ?? 'null'),
});

/** JSON bodies, well-formed or not, in encodings the server may or may not read. */
export function jsonBodies(valid: fc.Arbitrary<unknown>): fc.Arbitrary<Body> {
  return fc.oneof(
    { weight: 3, arbitrary: valid.map(json) },
    { weight: 5, arbitrary: valid.chain(mutate).map(json) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.constantFrom(
            '{',
            '{"name":',
            '{"a":1}}',
            '[1,2',
            '\u0000',
            'nul\u0000',
            '{"name":"\\u0000"}',
            '{"__proto__":{"x":1}}',
            '{"constructor":{"prototype":{"x":1}}}',
            '',
            'null',
            '"str"',
          ),
          fc.constantFrom('application/json', 'application/x+json', 'text/plain', ''),
        )
        .map(([text, type]): Body => ({
          headers: type ? { 'content-type': type } : {},
          bytes: Buffer.from(text),
        })),
    },
    {
      // Nesting deep enough to overflow a recursive parser or validator.
      weight: 1,
      arbitrary: fc.integer({ min: 1, max: 100_000 }).map((depth) => ({
        headers: { 'content-type': 'application/json' },
        bytes: Buffer.from(`{"name":${'['.repeat(depth)}${']'.repeat(depth)}}`),
      })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(valid, fc.constantFrom('gzip', 'deflate', 'br', 'x-bogus', 'gzip, gzip', 'identity'))
        .map(([v, encoding]) => [JSON.stringify(v) ?? 'null', encoding] as const)
        .chain(([text, encoding]) =>
          fc.constantFrom(
            // Claims an encoding; the bytes are plain, cut or real.
            { encoding, bytes: Buffer.from(text) },
            { encoding, bytes: gzipSync(text).subarray(0, 15) },
            { encoding, bytes: gzipSync(text) },
          ),
        )
        .map(({ encoding, bytes }) => ({
          headers: { 'content-type': 'application/json', 'content-encoding': encoding },
          bytes,
        })),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom('utf-16', 'koi8-r', 'bogus').map((charset) => ({
        headers: { 'content-type': `application/json; charset=${charset}` },
        bytes: Buffer.from('{"name":"x"}'),
      })),
    },
  );
}

const B = 'fuzzboundary';
const part = (headers: string, content: string) => `--${B}\r\n${headers}\r\n\r\n${content}\r\n`;
const filePart = (filename: string, content = 'fuzz') =>
  part(
    `Content-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: text/plain`,
    content,
  );

/** multipart/form-data bodies: valid forms, and every way of breaking one that broke us. */
export function multipartBodies(fields: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<Body> {
  // A field it leaves out is absent from `values`, never present as undefined.
  const fieldParts = fc.record(fields, { requiredKeys: [] }).map((values) =>
    Object.entries(values as Record<string, string>)
      .map(([k, v]) => part(`Content-Disposition: form-data; name="${k}"`, v))
      .join(''),
  );
  const name = fc.oneof(
    fc.constantFrom('fuzz.txt', 'a b.csv', 'ü.txt'),
    nastyString.map((s) => s.replace(/["\r\n]/g, '_').slice(0, 1000)),
  );
  const typed = (bytes: string | Buffer, headers: Record<string, string> = {}): Body => ({
    headers: { 'content-type': `multipart/form-data; boundary=${B}`, ...headers },
    bytes: Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1'),
  });
  return fc.oneof(
    fc.tuple(fieldParts, name).map(([f, n]) => typed(`${f}${filePart(n)}--${B}--\r\n`)),
    fc
      .tuple(fieldParts, name)
      .map(([f, n]) => typed(`${f}${filePart(n)}${filePart(n)}--${B}--\r\n`)),
    fc
      .tuple(fieldParts, fc.nat({ max: 200 }))
      .map(([f, cut]) => typed(`${f}${filePart('cut.txt', 'y'.repeat(100))}`.slice(0, -cut - 1))),
    fieldParts.map((f) => typed(`${f}--${B}\r\nno colon\r\n\r\nx\r\n--${B}--\r\n`)),
    fieldParts.map((f) => typed(`${f}${filePart('nul\u0000.txt')}--${B}--\r\n`)),
    fc
      .tuple(fieldParts, fc.constantFrom('a%00b', '%2e%2e', '..%2Fx', '%ZZ', '%E0%A4'))
      .map(([f, enc]) =>
        typed(
          `${f}${part(`Content-Disposition: form-data; name="file"; filename*=UTF-8''${enc}`, 'z')}--${B}--\r\n`,
        ),
      ),
    fieldParts.map((f) => ({
      headers: { 'content-type': 'multipart/form-data' },
      bytes: Buffer.from(`${f}${filePart('nob.txt')}`),
    })),
    fieldParts.map((f) =>
      typed(gzipSync(`${f}${filePart('gz.txt')}--${B}--\r\n`), { 'content-encoding': 'gzip' }),
    ),
    fc.string({ unit: 'binary', maxLength: 300 }).map((s) => typed(s)),
  );
}

/** A path segment: a real id, a sibling that does not exist, junk, or a broken escape. */
export const sibling = (id: string) => `${id.slice(0, -4)}beef`;

export function pathSegment(validIds: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...validIds) },
    { weight: 2, arbitrary: fc.constantFrom(...validIds.map(sibling)) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '%ZZ',
        '%',
        '%E0%A4%A',
        '%00',
        '%C0%AF',
        '%2e%2e',
        '..',
        '.',
        '%FF',
      ),
    },
    { weight: 3, arbitrary: nastyString.map((s) => pct(s.slice(0, 3000))) },
    { weight: 1, arbitrary: fc.constantFrom(...validIds).map((id) => `${id}%00`) },
  );
}

/** Query strings: schema-shaped values, junk values, repeated and unknown keys. */
export function queryStrings(params: { name: string; schema: JsonSchema }[]): fc.Arbitrary<string> {
  const value = (schema: JsonSchema) =>
    fc.oneof(
      fromSchema(schema).map(String),
      nastyString,
      fc.constantFrom('-1', '0', '1e999', 'NaN', 'asc', 'desc', 'true'),
    );
  const entries = fc.array(
    fc.oneof(
      ...params.map((p) => value(p.schema).map((v) => [p.name, v] as const)),
      fc.tuple(fc.string({ maxLength: 8 }), nastyString),
    ),
    { maxLength: 4 },
  );
  return fc.oneof(
    entries.map((list) => list.map(([k, v]) => `${pct(k)}=${pct(v)}`).join('&')),
    fc.constantFrom('limit=%ZZ', 'name=%00', 'purpose=a%00', 'after=%', '&&&', '=x', 'a[b][c]=1'),
  );
}
