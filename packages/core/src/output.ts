const fatal = new TextDecoder('utf-8', { fatal: true });

/** How many bytes at the end of `buf` begin a multibyte character that is not complete yet. */
export function incompleteUtf8Tail(buf: Buffer): number {
  for (let back = 1; back <= Math.min(3, buf.length); back++) {
    const byte = buf[buf.length - back]!;
    if ((byte & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const need = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

/** Drops a multibyte sequence cut off at the end of a buffer (e.g. by an output cap). */
export const trimIncompleteUtf8 = (buf: Buffer): Buffer =>
  buf.subarray(0, buf.length - incompleteUtf8Tail(buf));

export type Encoded = { text: string; encoding: 'utf-8' } | { text: string; encoding: 'base64' };

/** Valid UTF-8 travels as text; anything else as base64, so no byte is ever corrupted. */
export function encodeOutput(buf: Buffer): Encoded {
  try {
    return { text: fatal.decode(buf), encoding: 'utf-8' };
  } catch {
    return { text: buf.toString('base64'), encoding: 'base64' };
  }
}
