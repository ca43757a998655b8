import { describe, expect, it } from 'vitest';
import { parseListing } from './docker-files.js';

const listing = (...fields: string[]) => Buffer.from(fields.map((f) => `${f}\0`).join(''));

describe('parseListing', () => {
  it('reads path, size and mtime (ms) per file', () => {
    expect(parseListing(listing('a.txt', '3', '1577934245123', 'd/b', '0', '0'))).toEqual([
      { path: 'a.txt', bytes: 3, modifiedAt: new Date(1577934245123) },
      { path: 'd/b', bytes: 0, modifiedAt: new Date(0) },
    ]);
  });

  it('keeps a file whose time is not a sane number, without a time', () => {
    for (const bad of ['-5', '1e3', '', 'soon', '9'.repeat(16)]) {
      expect(parseListing(listing('a.txt', '3', bad))).toEqual([{ path: 'a.txt', bytes: 3 }]);
    }
  });

  it('still refuses bad names and sizes; an entry missing its time keeps no time', () => {
    expect(
      parseListing(listing('ok', '1', '5', '../x', '1', '5', 'y', '-1', '5', 'cut', '1')),
    ).toEqual([
      { path: 'ok', bytes: 1, modifiedAt: new Date(5) },
      { path: 'cut', bytes: 1 },
    ]);
  });
});
