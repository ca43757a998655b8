import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from './errors.js';
import { resolveDataPath } from './paths.js';

describe('resolveDataPath', () => {
  it.each([
    ['/mnt/data', '/mnt/data'],
    ['/mnt/data/', '/mnt/data'],
    ['/mnt/data/a/b', '/mnt/data/a/b'],
    ['a/b.txt', '/mnt/data/a/b.txt'],
    ['/mnt/data//a/./b', '/mnt/data/a/b'],
    ['my file ü.txt', '/mnt/data/my file ü.txt'],
  ])('accepts %j as %j', (input, expected) => {
    expect(resolveDataPath(input, 'path')).toBe(expected);
  });

  it.each([
    ['..'],
    ['../etc/passwd'],
    ['/mnt/data/../../etc/passwd'],
    ['/mnt/data/a/../../x'],
    ['%2e%2e/etc'],
    ['/mnt/data/%2E%2E/%2e%2e/etc'],
    ['/etc/passwd'],
    ['/mnt/database'],
    ['/mnt'],
    ['a\0b'],
    ['%00'],
    [''],
    ['%zz'],
    ['x'.repeat(256)],
    [`${'a/'.repeat(2100)}b`],
  ])('refuses %j with a 400 naming the param', (input) => {
    const error = (() => {
      try {
        resolveDataPath(input, 'workdir');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect((error as InvalidRequestError).param).toBe('workdir');
  });
});
