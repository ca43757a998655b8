import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

// The boundary search busboy (multer's parser) runs over every byte of an upload: streamsearch,
// patched (patches/streamsearch@1.1.0.patch) to find the needle with Buffer#indexOf instead of a
// byte-at-a-time loop in JavaScript. Loaded exactly as busboy loads it.
const require = createRequire(import.meta.url);
const busboy = createRequire(require.resolve('multer')).resolve('busboy');
type Found = (isMatch: boolean, data: Buffer | undefined, start: number, end: number) => void;
const searchModule = createRequire(busboy).resolve('streamsearch');
const StreamSearch = createRequire(busboy)('streamsearch') as new (
  needle: Buffer,
  cb: Found,
) => { push(chunk: Buffer): void; destroy(): void };

/** What a search reports for `haystack` fed in `cuts`: the bytes between needles, in order. */
function searched(needle: Buffer, haystack: Buffer, cuts: number[]): Buffer[] {
  const parts: Buffer[] = [];
  let current: Buffer[] = [];
  const search = new StreamSearch(needle, (isMatch, data, start, end) => {
    if (data && end > start) current.push(Buffer.from(data.subarray(start, end)));
    if (isMatch) {
      parts.push(Buffer.concat(current));
      current = [];
    }
  });
  let at = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < haystack.length)].sort((a, b) => a - b)) {
    search.push(haystack.subarray(at, cut));
    at = cut;
  }
  search.push(haystack.subarray(at));
  search.destroy();
  parts.push(Buffer.concat(current));
  return parts;
}

/** The same, by splitting the whole haystack at each needle (non-overlapping, left to right). */
function split(needle: Buffer, haystack: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let at = 0;
  for (let i = haystack.indexOf(needle); i !== -1; i = haystack.indexOf(needle, at)) {
    parts.push(haystack.subarray(at, i));
    at = i + needle.length;
  }
  parts.push(haystack.subarray(at));
  return parts;
}

describe("busboy's boundary search", () => {
  it('is the patched one (pnpm applies patches/ at install)', () => {
    const source = readFileSync(searchModule, 'utf8');
    expect(source).toContain('data.indexOf(needle, pos)');
  });

  it('finds every boundary, and passes every other byte, however the body is cut', () => {
    // A multipart delimiter is CRLF, two dashes and the boundary (which holds no CR or LF). Few
    // letters make near-misses, and delimiters cut across chunks, common.
    const text = (letters: string, min: number, max: number) =>
      fc
        .array(fc.constantFrom(...letters), { minLength: min, maxLength: max })
        .map((cs) => Buffer.from(cs.join(''), 'latin1'));
    fc.assert(
      fc.property(
        text('-ab', 1, 8).map((b) => Buffer.concat([Buffer.from('\r\n--'), b])),
        fc.array(text('\r\n-ab', 0, 40), { maxLength: 8 }),
        fc.array(fc.nat(400), { maxLength: 12 }),
        (needle, pieces, cuts) => {
          const haystack = Buffer.concat(pieces.flatMap((p) => [p, needle]).slice(0, -1));
          expect(searched(needle, haystack, cuts)).toEqual(split(needle, haystack));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('finds a boundary at the very start, at the very end, and back to back', () => {
    const needle = Buffer.from('\r\n--xyz');
    const hay = Buffer.concat([needle, Buffer.from('a'), needle, needle, Buffer.from('b'), needle]);
    for (const cuts of [[], [1], [3, 8], [7, 14, 15, 21], [...Array(hay.length).keys()]])
      expect(searched(needle, hay, cuts)).toEqual(split(needle, hay));
  });
});
