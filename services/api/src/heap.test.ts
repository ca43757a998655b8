import v8 from 'node:v8';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HEAP_GROWING_PERCENT, tuneHeapGrowth } from './heap.js';

describe('tuneHeapGrowth', () => {
  afterEach(() => vi.restoreAllMocks());

  it("sets V8's heap growth to twice the live heap when the command line chose none", () => {
    const set = vi.spyOn(v8, 'setFlagsFromString').mockImplementation(() => {});
    expect(tuneHeapGrowth(['--conditions=development'])).toBe(HEAP_GROWING_PERCENT);
    expect(HEAP_GROWING_PERCENT).toBe(100);
    expect(set).toHaveBeenCalledExactlyOnceWith('--heap-growing-percent=100');
  });

  it("leaves an operator's own --heap-growing-percent alone and reports it", () => {
    const set = vi.spyOn(v8, 'setFlagsFromString').mockImplementation(() => {});
    expect(tuneHeapGrowth(['--heap-growing-percent=50'])).toBe(50);
    expect(tuneHeapGrowth(['--heap_growing_percent=40'])).toBe(40);
    expect(set).not.toHaveBeenCalled();
  });
});
