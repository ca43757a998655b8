import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';

/** A long-running piece of the service: started in order, stopped in reverse. */
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts `services` one after another. If one fails to start, the ones already started are
 * stopped (in reverse) before the error comes out. The result stops them all, in reverse, once.
 */
export async function startInOrder(
  services: Service[],
  logger: Logger,
): Promise<() => Promise<void>> {
  const started: Service[] = [];
  const stopAll = async () => {
    for (const service of started.reverse()) {
      try {
        await service.stop();
      } catch (err) {
        logger.warn({ err, service: service.name }, 'a service failed to stop cleanly');
      }
    }
  };
  try {
    for (const service of services) {
      await service.start();
      started.push(service);
    }
  } catch (error) {
    await stopAll();
    throw error;
  }
  let stopping: Promise<void> | null = null;
  return () => (stopping ??= stopAll());
}

/** A service that can also be asked to run now (tests, operators). */
export interface Job extends Service {
  /** Runs now (or joins the run in flight). Never rejects. */
  runNow(): Promise<void>;
}

export interface ScheduledOptions<R> {
  name: string;
  /** node-cron expression (seconds field allowed). */
  cron: string;
  /** One run; `signal` aborts when the service stops (a run in flight finishes what it holds). */
  run: (signal: AbortSignal) => Promise<R>;
  logger: Logger;
  /** At start: wait for a first run (its failure fails the start), start one in the background, or neither. */
  firstRun: 'await' | 'background' | 'none';
  /** What a finished run reports, for the log. */
  onReport?: (report: R) => void;
  /** The warning logged when a run fails; the next run retries. */
  failureMessage: string;
  /** Also told of each failed run (metrics). */
  onFailure?: (error: unknown) => void;
}

/**
 * A job on a node-cron schedule: a run never overlaps itself (asking for a run while one is in
 * flight joins it), a failed run is logged and retried on the next tick, and stopping waits for
 * the run in flight.
 */
export class Scheduled<R> implements Job {
  readonly name: string;
  readonly #stopping = new AbortController();
  #task: ScheduledTask | null = null;
  #inflight: Promise<void> | null = null;
  #queued: Promise<void> | null = null;

  constructor(private readonly options: ScheduledOptions<R>) {
    this.name = options.name;
  }

  /**
   * A run that starts after this call: with none in flight it starts now; with one in flight
   * (whose view may predate the caller's changes) one more follows it, shared by every caller
   * that asks meanwhile.
   */
  runNow(): Promise<void> {
    if (!this.#inflight) return this.#launch();
    return (this.#queued ??= this.#inflight.then(() => {
      this.#queued = null;
      return this.#inflight ?? this.#launch();
    }));
  }

  #launch(): Promise<void> {
    return (this.#inflight = this.options
      .run(this.#stopping.signal)
      .then((report) => this.options.onReport?.(report))
      .catch((err: unknown) => {
        this.options.onFailure?.(err);
        this.options.logger.warn({ err }, this.options.failureMessage);
      })
      .finally(() => {
        this.#inflight = null;
      }));
  }

  async start(): Promise<void> {
    if (this.options.firstRun === 'await') await this.options.run(this.#stopping.signal);
    // A tick while a run is in flight is skipped: the schedule never queues work.
    this.#task = cron.schedule(this.options.cron, () => void (this.#inflight ?? this.#launch()), {
      noOverlap: true,
      name: this.options.name,
    });
    if (this.options.firstRun === 'background') void this.#launch();
  }

  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#task?.stop();
    await this.#queued;
    await this.#inflight;
  }
}
