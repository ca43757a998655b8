import { describe, expect, it } from 'vitest';
import { standbyFrame, supervised } from './sandbox-exec.js';

/** The frame's fields, as the supervisor splits them. */
const fields = (frame: Buffer) => {
  expect(frame.readUInt32BE(0)).toBe(frame.length - 4);
  expect(frame.at(-1)).toBe(0);
  return frame.subarray(4, -1).toString('utf8').split('\0');
};

describe('standbyFrame', () => {
  it('carries the variables, then what `run` takes, without the supervisor and its `--`', () => {
    const argv = supervised('berth:exec_1', 5000, 'sub/dir', ['sh', '-c', 'echo "$A"', '']);
    const frame = standbyFrame(argv, ['A=1', 'B=x=y']);
    expect(fields(frame!)).toEqual([
      '2',
      'A=1',
      'B=x=y',
      'berth:exec_1',
      '5000',
      'sub/dir',
      'sh',
      '-c',
      'echo "$A"',
      '',
    ]);
  });

  it('counts bytes, not characters', () => {
    const frame = standbyFrame(supervised('t', 1, '', ['echo', 'é€']), []);
    expect(fields(frame!)).toEqual(['0', 't', '1', '', 'echo', 'é€']);
  });

  it('is null for what the supervisor could not take back as sent', () => {
    expect(standbyFrame(['sh', '-c', 'true'], [])).toBeNull();
    expect(standbyFrame(supervised('t', 1, '', ['echo', 'a\0b']), [])).toBeNull();
    expect(standbyFrame(supervised('t', 1, '', ['true']), ['A=\0'])).toBeNull();
    // The supervisor takes at most 65 528 fields; a command of 70 000 words is a Docker exec.
    const words = Array.from({ length: 70_000 }, () => 'a');
    expect(standbyFrame(supervised('t', 1, '', ['echo', ...words]), [])).toBeNull();
    expect(
      standbyFrame(supervised('t', 1, '', ['echo', ...words.slice(0, 65_000)]), []),
    ).not.toBeNull();
    expect(
      standbyFrame(supervised('t', 1, '', ['echo', 'x'.repeat(9 * 1024 * 1024)]), []),
    ).toBeNull();
  });
});
