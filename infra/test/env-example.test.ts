import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigSchema, loadConfig } from '../../services/api/src/config.js';
import { root } from './compose-cli.js';

const listed = new Map(
  readFileSync(join(root, '.env.example'), 'utf8')
    .split('\n')
    .map((line) => /^# ([A-Z][A-Z0-9_]*)=(.*)$/.exec(line))
    .filter((m) => m !== null)
    .map((m) => [m[1]!, m[2]!]),
);

describe('.env.example', () => {
  it("lists every setting of the service with the schema's own default", () => {
    const defaults = loadConfig({});
    const expected = Object.keys(ConfigSchema.shape).map((key) => [
      key,
      String(defaults[key as keyof typeof defaults] ?? ''),
    ]);
    expect(expected.map(([key]) => [key, listed.get(key!)])).toEqual(expected);
  });

  it("lists every variable docker-compose.yml reads, so compose's .env can set each", () => {
    const compose = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
    const read = [...new Set([...compose.matchAll(/\$\{([A-Z_]+)/g)].map((m) => m[1]!))];
    expect(read.filter((key) => !listed.has(key))).toEqual([]);
  });
});
