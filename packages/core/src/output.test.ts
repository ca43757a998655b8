import { describe, expect, it } from 'vitest';
import { encodeOutput, trimIncompleteUtf8 } from './output.js';

describe('output encoding', () => {
  it('keeps valid UTF-8 as text', () => {
    expect(encodeOutput(Buffer.from('héllo ✓ 🚀'))).toEqual({
      text: 'héllo ✓ 🚀',
      encoding: 'utf-8',
    });
  });

  it('sends anything else as base64, byte for byte', () => {
    const bytes = Buffer.from([0xff, 0x00, 0xfe, 0x41]);
    const out = encodeOutput(bytes);
    expect(out.encoding).toBe('base64');
    expect(Buffer.from(out.text, 'base64').equals(bytes)).toBe(true);
  });

  it('trims a character cut by a cap, and nothing else', () => {
    const rocket = Buffer.from('ab🚀');
    for (let cut = 3; cut < rocket.length; cut++) {
      expect(trimIncompleteUtf8(rocket.subarray(0, cut)).toString()).toBe('ab');
    }
    expect(trimIncompleteUtf8(rocket).toString()).toBe('ab🚀');
    expect(trimIncompleteUtf8(Buffer.from('abc')).toString()).toBe('abc');
  });
});
