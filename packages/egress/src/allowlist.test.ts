import { describe, expect, it } from 'vitest';
import { matchHost, normalizeHost, parseAllowlist, ruleToString } from './allowlist.js';
import { isPublicUnicast } from './address-guard.js';

const rules = (entries: string[]) => {
  const parsed = parseAllowlist(entries, { maxEntries: 64 });
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.rules;
};

describe('parseAllowlist', () => {
  it('normalises case, a trailing dot and IDN', () => {
    expect(
      rules(['API.Example.COM.', 'bücher.example', '*.Wild.example.org']).map(ruleToString),
    ).toEqual(['api.example.com', 'xn--bcher-kva.example', '*.wild.example.org']);
  });

  it.each([
    ['192.168.1.1', /IP addresses/],
    ['[::1]', /IP addresses/],
    ['::ffff:127.0.0.1', /IP addresses/],
    ['2130706433', /IP addresses/],
    ['0x7f.1', /IP addresses/],
    ['https://a.example.com', /scheme/],
    ['a.example.com:443', /ports/],
    ['a.example.com/x', /paths/],
    ['u:p@a.example.com', /userinfo/],
    ['*.com', /public suffix/],
    ['*.co.uk', /public suffix/],
    ['*.github.io', /public suffix/],
    ['*.test', /not a valid hostname|public suffix/],
    ['com', /not a valid hostname|public suffix/],
    ['co.uk', /public suffix/],
    ['a.*.example.com', /wildcard/],
    ['-bad.example.com', /not a valid hostname/],
    ['a..example.com', /not a valid hostname/],
    ['a b.example.com', /not a valid hostname/],
    [`${'a'.repeat(64)}.example.com`, /not a valid hostname/],
  ])('refuses %j', (entry, message) => {
    const parsed = parseAllowlist(['ok.example.com', entry], { maxEntries: 64 });
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.index).toBe(1);
      expect(parsed.message).toMatch(message);
    }
  });

  it('caps the number of entries', () => {
    expect(parseAllowlist(['a.example.com', 'b.example.com'], { maxEntries: 1 })).toMatchObject({
      ok: false,
      index: 1,
    });
  });
});

describe('matchHost', () => {
  const list = rules(['allowed.test', '*.wild.example.com']);
  it.each([
    ['allowed.test', true],
    ['ALLOWED.TEST', true],
    ['allowed.test.', true],
    ['a.wild.example.com', true],
    ['a.b.wild.example.com', true],
    ['wild.example.com', false],
    ['evilwild.example.com', false],
    ['allowed.test.evil.test', false],
    ['evilallowed.test', false],
    ['sub.allowed.test', false],
    ['allowed.test@evil.test', false],
    ['127.0.0.1', false],
    ['', false],
  ])('%j → %s', (host, expected) => {
    expect(matchHost(host, list) !== null).toBe(expected);
  });
  it('normalises IDN the same way on both sides', () => {
    expect(matchHost('BÜCHER.example', rules(['bücher.example']))).not.toBeNull();
    expect(normalizeHost('xn--bcher-kva.example')).toBe('xn--bcher-kva.example');
  });
});

describe('isPublicUnicast', () => {
  const none = new Set<string>();
  it.each([
    ['93.184.216.34', true],
    ['1.1.1.1', true],
    ['2606:4700:4700::1111', true],
    ['10.1.2.3', false],
    ['172.16.0.1', false],
    ['172.31.255.255', false],
    ['192.168.0.1', false],
    ['127.0.0.1', false],
    ['0.0.0.0', false],
    ['169.254.169.254', false],
    ['100.64.0.1', false],
    ['192.0.2.1', false],
    ['224.0.0.1', false],
    ['255.255.255.255', false],
    ['::1', false],
    ['::', false],
    ['fe80::1', false],
    ['fd00::1', false],
    ['ff02::1', false],
    ['::ffff:127.0.0.1', false],
    ['::ffff:7f00:1', false],
    ['64:ff9b::a9fe:a9fe', false],
    ['2002:c0a8:0101::1', false],
    ['::ffff:93.184.216.34', true],
    ['not-an-ip', false],
  ])('%s → %s', (ip, expected) => {
    expect(isPublicUnicast(ip, none)).toBe(expected);
  });
  it("refuses the host's own addresses", () => {
    expect(isPublicUnicast('93.184.216.34', new Set(['93.184.216.34']))).toBe(false);
  });
});
