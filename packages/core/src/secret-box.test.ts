import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AesGcmSecretBox, newPlaceholder } from './secret-box.js';

describe('AesGcmSecretBox', () => {
  const box = new AesGcmSecretBox(randomBytes(32));

  it('opens what it sealed, for the same container only, and never shows the value', () => {
    const sealed = box.seal('cntr_a', 'sk-live-very-secret');
    expect(sealed).not.toContain('sk-live-very-secret');
    expect(Buffer.from(sealed.split('.')[3]!, 'base64url').toString()).not.toContain('secret');
    expect(box.open('cntr_a', sealed)).toBe('sk-live-very-secret');
    expect(() => box.open('cntr_b', sealed)).toThrow();
    expect(box.seal('cntr_a', 'x')).not.toBe(box.seal('cntr_a', 'x'));
  });

  it('refuses another key and altered text', () => {
    const sealed = box.seal('cntr_a', 'value');
    expect(() => new AesGcmSecretBox(randomBytes(32)).open('cntr_a', sealed)).toThrow();
    const parts = sealed.split('.');
    parts[3] = Buffer.from('valuf').toString('base64url');
    expect(() => box.open('cntr_a', parts.join('.'))).toThrow();
    expect(() => box.open('cntr_a', 'plain')).toThrow(/not a sealed secret/);
  });

  it('reads keys as hex or base64 of 32 bytes only', () => {
    const key = randomBytes(32);
    expect(AesGcmSecretBox.parseKey(key.toString('hex'))).toEqual(key);
    expect(AesGcmSecretBox.parseKey(key.toString('base64'))).toEqual(key);
    expect(() => AesGcmSecretBox.parseKey('short')).toThrow(/32 bytes/);
  });

  it('makes placeholders that are unguessable and header-safe', () => {
    const a = newPlaceholder();
    expect(a).toMatch(/^berth_secret_[0-9a-f]{48}$/);
    expect(newPlaceholder()).not.toBe(a);
  });
});
