import { describe, expect, it } from 'vitest';
import { eachWithDeadline } from './concurrency.js';

describe('eachWithDeadline', () => {
  it('goes on past an item that never finishes, reporting it once its deadline passes', async () => {
    const done: number[] = [];
    const failed: number[] = [];
    const started = Date.now();
    await eachWithDeadline([1, 2, 3, 4, 5], {
      concurrency: 2,
      itemDeadlineMs: 200,
      work: async (n) => {
        if (n === 2) await new Promise(() => {}); // wedged forever
        if (n === 4) throw new Error('boom');
        done.push(n);
      },
      onError: (n) => failed.push(n),
    });
    expect(done.sort()).toEqual([1, 3, 5]);
    expect(failed.sort()).toEqual([2, 4]);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('never runs more than `concurrency` items at once, over an async source', async () => {
    let running = 0;
    let most = 0;
    async function* items() {
      for (let i = 0; i < 20; i++) yield i;
    }
    await eachWithDeadline(items(), {
      concurrency: 3,
      itemDeadlineMs: 1000,
      work: async () => {
        running += 1;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 5));
        running -= 1;
      },
      onError: () => {},
    });
    expect(most).toBe(3);
  });
});
