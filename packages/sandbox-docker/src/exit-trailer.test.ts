import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ExitTrailer } from './exit-trailer.js';

const TAG = 'berth:exec_0123456789abcdef';
const trailer = (code: number, tag = TAG) => `\x1eberth-exit ${tag} ${code}\n`;

/** Feeds `text` through a trailer in pieces of `size` bytes; what came out, and the code. */
function feed(text: string, size: number): { out: string; code: number | null } {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const t = new ExitTrailer(out, TAG);
  const bytes = Buffer.from(text, 'latin1');
  for (let at = 0; at < bytes.length; at += size) t.write(bytes.subarray(at, at + size));
  t.finish();
  out.end();
  return { out: Buffer.concat(chunks).toString('latin1'), code: t.code };
}

describe('ExitTrailer', () => {
  it('strips the supervisor trailer and reads the code, however the stream is cut', () => {
    const output = 'hello\nworld\n'.repeat(50);
    for (const size of [1, 2, 7, 31, 32, 33, 64, 4096])
      for (const code of [0, 3, 137, 255])
        expect(feed(output + trailer(code), size)).toEqual({ out: output, code });
  });

  it('reads the code of a command that printed nothing', () => {
    expect(feed(trailer(0), 5)).toEqual({ out: '', code: 0 });
  });

  it('passes every byte on and gives no code when there is no trailer (an older supervisor)', () => {
    for (const text of ['', 'x', 'ok\n', 'a'.repeat(1000)])
      for (const size of [1, 3, 100]) expect(feed(text, size)).toEqual({ out: text, code: null });
  });

  it('reads only the last trailer: one the command printed itself stays in its output', () => {
    const forged = `pwned\n${trailer(0)}`;
    expect(feed(forged + trailer(3), 4)).toEqual({ out: forged, code: 3 });
  });

  it('takes no trailer of another run, and none followed by more output', () => {
    const other = trailer(0, 'berth:exec_ffffffffffffffff');
    expect(feed(other, 8)).toEqual({ out: other, code: null });
    const notLast = `${trailer(0)}more`;
    expect(feed(notLast, 8)).toEqual({ out: notLast, code: null });
    const malformed = `\x1eberth-exit ${TAG} 12a\n`;
    expect(feed(malformed, 8)).toEqual({ out: malformed, code: null });
  });

  it('passes output on as it arrives, holding back only what may be the trailer', () => {
    const out = new PassThrough();
    const seen: string[] = [];
    out.on('data', (c: Buffer) => seen.push(c.toString('latin1')));
    const t = new ExitTrailer(out, TAG);
    t.write(Buffer.from('tick\n'));
    expect(seen).toEqual(['tick\n']);
    t.write(Buffer.from('tock\n\x1eberth-ex'));
    expect(seen).toEqual(['tick\n', 'tock\n']);
    t.write(Buffer.from('tra\n'));
    expect(seen.join('')).toBe('tick\ntock\n\x1eberth-extra\n');
  });

  it("reports the destination's backpressure", () => {
    const out = new PassThrough({ highWaterMark: 16 });
    const t = new ExitTrailer(out, TAG);
    expect(t.write(Buffer.alloc(1024))).toBe(false);
  });
});
