import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from './errors.js';
import { checkExecArguments, MAX_ARG_BYTES } from './exec-limits.js';

const paramOf = (argv: string[], env: Record<string, string> = {}): string | null => {
  try {
    checkExecArguments(argv, env);
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidRequestError);
    return (error as InvalidRequestError).param;
  }
};

describe('checkExecArguments', () => {
  it('accepts what execve takes', () => {
    expect(paramOf(['sh', '-c', 'x'.repeat(MAX_ARG_BYTES)])).toBeNull();
    expect(paramOf(['/'.repeat(4096)])).toBeNull();
  });
  it('refuses, naming the param, what execve or the runtime would choke on', () => {
    expect(paramOf(['a'.repeat(4097)])).toBe('command.0');
    expect(paramOf(['echo', 'é'.repeat(MAX_ARG_BYTES / 2 + 1)])).toBe('command.1'); // bytes, not chars
    expect(paramOf(['echo', 'a\0b'])).toBe('command.1');
    expect(paramOf(['true'], { BIG: 'x'.repeat(MAX_ARG_BYTES) })).toBe('env.BIG');
    expect(paramOf(['true', ...Array.from({ length: 9 }, () => 'y'.repeat(120_000))])).toBe(
      'command',
    );
  });
});
