import { InvalidRequestError } from './errors.js';

/** PATH_MAX: the longest executable path the kernel resolves. */
export const MAX_EXECUTABLE_BYTES = 4096;
/** MAX_ARG_STRLEN (32 pages) less the terminating NUL: the longest single argument or variable. */
export const MAX_ARG_BYTES = 131_071;
/**
 * argv + env together. The kernel allows a quarter of the stack limit (2 MiB at the usual 8 MiB);
 * Berth keeps half of that, leaving room for the supervisor's own arguments and the image's env.
 */
export const MAX_ARGV_ENV_BYTES = 1024 * 1024;

const bytes = (s: string): number => Buffer.byteLength(s) + 1;

/**
 * Refuses, with a 400 naming the param, what execve would refuse (or what would wedge the OCI
 * runtime with an error message too large for its pipe): oversized executable paths, arguments
 * and variables, NUL bytes, and argv + env past the kernel's total.
 */
export function checkExecArguments(argv: string[], env: Record<string, string>): void {
  const fail = (param: string, why: string): never => {
    throw new InvalidRequestError(`Invalid '${param}': ${why}.`, { param });
  };
  if (argv.length === 0) fail('command', 'it must name a program');
  if (Buffer.byteLength(argv[0]!) > MAX_EXECUTABLE_BYTES)
    fail('command.0', `the program path must be at most ${MAX_EXECUTABLE_BYTES} bytes`);
  let total = 0;
  argv.forEach((arg, i) => {
    if (arg.includes('\0')) fail(`command.${i}`, 'NUL bytes are not allowed');
    if (bytes(arg) - 1 > MAX_ARG_BYTES)
      fail(`command.${i}`, `one argument may be at most ${MAX_ARG_BYTES} bytes`);
    total += bytes(arg);
  });
  for (const [name, value] of Object.entries(env)) {
    if (name.includes('\0') || value.includes('\0'))
      fail(`env.${name}`, 'NUL bytes are not allowed');
    if (bytes(`${name}=${value}`) - 1 > MAX_ARG_BYTES)
      fail(`env.${name}`, `one variable may be at most ${MAX_ARG_BYTES} bytes`);
    total += bytes(`${name}=${value}`);
  }
  if (total > MAX_ARGV_ENV_BYTES)
    fail(
      'command',
      `the arguments and environment together must be at most ${MAX_ARGV_ENV_BYTES} bytes`,
    );
}
