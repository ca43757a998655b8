/**
 * Per-method hooks a fake runs before doing its job, with the call's arguments: throw to make the
 * call fail, return a promise that never settles to make it hang, or just record the moment.
 */
export type Hooks<Port> = {
  [K in keyof Port]?: Port[K] extends (...args: infer A) => unknown
    ? (...args: A) => void | Promise<void>
    : never;
};

/** A promise and its settlers, for holding a fake call open until the test lets it go. */
export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A call that never answers: a wedged sandbox, an engine that stopped responding. */
export const never = (): Promise<never> => new Promise<never>(() => {});

/** What a promise rejected with, or null when it resolved: for asserting on the error itself. */
export const rejection = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => null,
    (e: unknown) => e,
  );
