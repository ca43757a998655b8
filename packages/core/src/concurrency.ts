/**
 * Runs `work` over `items`, at most `concurrency` at once, each under its own deadline: one item
 * that hangs or fails costs its deadline and is reported, and the rest go on.
 */
export async function eachWithDeadline<T>(
  items: Iterable<T> | AsyncIterable<T>,
  options: {
    concurrency: number;
    itemDeadlineMs: number;
    work: (item: T) => Promise<void>;
    onError: (item: T, error: unknown) => void;
  },
): Promise<void> {
  const running = new Set<Promise<void>>();
  const one = async (item: T): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        options.work(item),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`still running after ${options.itemDeadlineMs} ms`)),
            options.itemDeadlineMs,
          );
        }),
      ]);
    } catch (error) {
      options.onError(item, error);
    } finally {
      clearTimeout(timer);
    }
  };
  for await (const item of items) {
    const p = one(item).finally(() => running.delete(p));
    running.add(p);
    if (running.size >= options.concurrency) await Promise.race(running);
  }
  await Promise.all(running);
}
