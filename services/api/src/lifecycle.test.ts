import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Scheduled, startInOrder, type Service } from './lifecycle.js';

const logger = pino({ level: 'silent' });

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('Scheduled', () => {
  it('runNow during a run starts one more run after it, shared by every caller meanwhile', async () => {
    const gates = [deferred(), deferred()];
    let runs = 0;
    const job = new Scheduled({
      name: 't',
      cron: '0 0 1 1 *',
      run: async () => {
        await gates[runs++]!.promise;
        return runs;
      },
      logger,
      firstRun: 'none',
      failureMessage: 'failed',
    });
    const first = job.runNow();
    const second = job.runNow();
    const third = job.runNow();
    expect(second).toBe(third);
    expect(runs).toBe(1);
    gates[0]!.resolve();
    await first;
    await Promise.resolve();
    expect(runs).toBe(2);
    gates[1]!.resolve();
    await second;
    expect(runs).toBe(2);
    await job.stop();
  });

  it('a failed run is logged, never rejects, and stop waits for the run in flight', async () => {
    const gate = deferred();
    let finished = false;
    const job = new Scheduled({
      name: 't',
      cron: '0 0 1 1 *',
      run: async (signal) => {
        await gate.promise;
        finished = signal.aborted;
        throw new Error('boom');
      },
      logger,
      firstRun: 'background',
      failureMessage: 'failed',
    });
    await job.start();
    const stopped = job.stop();
    gate.resolve();
    await stopped;
    expect(finished).toBe(true);
  });

  it("firstRun 'await' fails the start when the first run fails", async () => {
    const job = new Scheduled({
      name: 't',
      cron: '0 0 1 1 *',
      run: () => Promise.reject(new Error('no database')),
      logger,
      firstRun: 'await',
      failureMessage: 'failed',
    });
    await expect(job.start()).rejects.toThrow('no database');
  });
});

describe('startInOrder', () => {
  const recorder = (log: string[], name: string, failStart = false): Service => ({
    name,
    start: async () => {
      if (failStart) throw new Error(`${name} failed`);
      log.push(`start ${name}`);
    },
    stop: async () => {
      log.push(`stop ${name}`);
    },
  });

  it('starts in order and stops in reverse, once', async () => {
    const log: string[] = [];
    const stop = await startInOrder([recorder(log, 'a'), recorder(log, 'b')], logger);
    await Promise.all([stop(), stop()]);
    expect(log).toEqual(['start a', 'start b', 'stop b', 'stop a']);
  });

  it('a start that fails stops what had started, in reverse, and rethrows', async () => {
    const log: string[] = [];
    await expect(
      startInOrder([recorder(log, 'a'), recorder(log, 'b'), recorder(log, 'c', true)], logger),
    ).rejects.toThrow('c failed');
    expect(log).toEqual(['start a', 'start b', 'stop b', 'stop a']);
  });
});
