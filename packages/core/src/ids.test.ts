import { describe, expect, it } from 'vitest';
import { idCreatedAt, idMinter, isId, newId } from './ids.js';

describe('ids', () => {
  it('start with the creation time in hex, like upstream container ids', () => {
    const id = newId('container', 1747844794);
    expect(id).toMatch(/^cntr_682dfeba[0-9a-f]{40}$/);
    expect(idCreatedAt('container', id)).toBe(1747844794);
  });

  it('have the documented shapes', () => {
    expect(newId('containerFile', 1)).toMatch(/^cfile_[0-9a-f]{32}$/);
    expect(newId('file', 1)).toMatch(/^file-[0-9a-f]{32}$/);
    expect(newId('exec', 1)).toMatch(/^exec_[0-9a-f]{32}$/);
  });

  it('sort in the order they were made, also within one second or one millisecond', () => {
    const inOneSecond = Array.from({ length: 1_000 }, () => newId('container', 1747844794));
    expect([...inOneSecond].sort()).toEqual(inOneSecond);
    const at = new Date(1747844794_123);
    const inOneMs = Array.from({ length: 1_000 }, () => newId('file', at));
    expect([...inOneMs].sort()).toEqual(inOneMs);
    expect(inOneMs.every((id) => idCreatedAt('file', id) === 1747844794)).toBe(true);
  });

  it('order ids of two replicas by their clocks, to the millisecond', () => {
    const [replicaA, replicaB] = [idMinter(), idMinter()];
    // B makes its id after A, with a clock that is 896 ms behind A's.
    const later = replicaA('containerFile', new Date(1747844794_900));
    const earlier = replicaB('containerFile', new Date(1747844794_004));
    expect(earlier < later).toBe(true);
    expect(idCreatedAt('containerFile', earlier)).toBe(1747844794);
  });

  it('are unique', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newId('container', 5)));
    expect(ids.size).toBe(10_000);
  });

  it('reject anything not well-formed', () => {
    const good = newId('container', 100);
    expect(isId('container', good)).toBe(true);
    for (const bad of [
      good.toUpperCase(),
      good.slice(0, -1),
      `${good}0`,
      good.replace('cntr_', 'cfile'),
      'cntr_../../etc',
      '',
    ]) {
      expect(isId('container', bad)).toBe(false);
    }
    expect(() => idCreatedAt('container', 'cntr_zz')).toThrow(TypeError);
  });
});
