import { describe, expect, it } from 'vitest';
import { isPublicUnicast, parseCidrs } from './address-guard.js';
import { parseIp } from './ip.js';
import { Resolver } from './resolver.js';

const none = new Set<string>();

describe('isPublicUnicast: IPv6 forms that embed an IPv4 address', () => {
  it.each([
    // IPv4-compatible ::/96
    ['::7f00:1', false],
    ['::127.0.0.1', false],
    ['::a00:1', false],
    ['::808:808', true],
    // IPv4-mapped ::ffff:0:0/96, in every spelling
    ['::ffff:127.0.0.1', false],
    ['::ffff:7f00:1', false],
    ['0:0:0:0:0:ffff:7f00:1', false],
    ['0000:0000:0000:0000:0000:FFFF:7F00:0001', false],
    ['0:0:0:0:0:ffff:127.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['::ffff:a9fe:a9fe', false],
    ['::ffff:8.8.8.8', true],
    ['::ffff:808:808', true],
    // IPv4-translated ::ffff:0:0:0/96
    ['::ffff:0:7f00:1', false],
    ['::ffff:0:10.0.0.1', false],
    ['0:0:0:0:ffff:0:a9fe:a9fe', false],
    ['::ffff:0:8.8.8.8', true],
    // NAT64 64:ff9b::/96
    ['64:ff9b::a9fe:a9fe', false],
    ['64:ff9b::127.0.0.1', false],
    ['64:ff9b:0:0:0:0:c0a8:1', false],
    ['64:ff9b::8.8.8.8', true],
    // local-use NAT64 64:ff9b:1::/48: refused whatever it embeds
    ['64:ff9b:1::808:808', false],
    ['64:ff9b:1:ffff::1', false],
    // 6to4 2002::/16: the IPv4 address is in the second and third groups
    ['2002:c0a8:0101::1', false],
    ['2002:7f00:1::', false],
    ['2002:a9fe:a9fe:1:2:3:4:5', false],
    ['2002:808:808::1', true],
    // Teredo 2001::/32 reaches any IPv4 address through a relay: refused outright
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', false],
    ['2001::f5ff:fffe', false], // client 10.0.0.1, obfuscated
    // plain IPv6
    ['2606:4700:4700::1111', true],
    ['2001:4860:4860::8888', true],
    ['::1', false],
    ['::', false],
    ['0:0:0:0:0:0:0:1', false],
    ['fe80::1%eth0', false],
    ['fd00::1', false],
    ['ff02::1', false],
    ['2001:db8::1', false],
    ['3fff::1', false],
    // not addresses
    ['::ffff:127.0.0.01', false],
    ['1::2::3', false],
    ['1:2:3:4:5:6:7:8:9', false],
    ['127.1', false],
    ['', false],
  ])('%s → %s', (ip, expected) => {
    expect(isPublicUnicast(ip, none)).toBe(expected);
  });
});

describe('parseIp', () => {
  it('reads every spelling of one address as the same bytes', () => {
    const want = parseIp('::ffff:127.0.0.1')!.bytes;
    for (const text of ['::ffff:7f00:1', '0:0:0:0:0:ffff:7f00:1', '0::ffff:7f00:0001'])
      expect(parseIp(text)!.bytes).toEqual(want);
  });
});

describe('denied ranges of the deployment', () => {
  const deny = parseCidrs(['203.0.114.0/24', '2a01:4f8:1::/48', '198.51.99.7']);
  it.each([
    ['203.0.114.9', false],
    ['203.0.115.9', true],
    ['::ffff:203.0.114.9', false],
    ['64:ff9b::cb00:7209', false],
    ['2a01:4f8:1:2::1', false],
    ['2a01:4f8:2::1', true],
    ['198.51.99.7', false],
    ['198.51.99.8', true],
  ])('%s → %s', (ip, expected) => {
    expect(isPublicUnicast(ip, none, deny)).toBe(expected);
  });

  it('refuses a malformed range when it is read', () => {
    expect(() => parseCidrs(['10.0.0.0/33'])).toThrow(/not an IPv4 or IPv6 CIDR/);
    expect(() => parseCidrs(['example.com/8'])).toThrow(/not an IPv4 or IPv6 CIDR/);
    expect(() => new Resolver({ denyCidrs: ['fd00::/129'] })).toThrow(/fd00::\/129/);
  });

  it('reach the resolver through its options', async () => {
    const resolver = new Resolver({
      ownAddresses: none,
      denyCidrs: ['203.0.114.0/24'],
      lookup: async (host) => (host === 'inside.test' ? ['203.0.114.5'] : ['203.0.115.5']),
    });
    await expect(resolver.resolve('inside.test', 443)).rejects.toThrow(/not a public address/);
    await expect(resolver.resolve('outside.test', 443)).resolves.toEqual({
      address: '203.0.115.5',
      port: 443,
    });
  });
});

describe('trusted ranges of the deployment', () => {
  const own = new Set(['192.168.7.5']);
  const trust = (list: string[], deny: string[] = []) =>
    new Resolver({
      ownAddresses: own,
      trustedCidrs: list,
      denyCidrs: deny,
      lookup: async (host) => [host.slice(0, host.indexOf('.x.test'))],
    });
  const reach = async (r: Resolver, ip: string) =>
    r.resolve(`${ip}.x.test`, 443).then(
      () => true,
      () => false,
    );

  it('lets a name resolve into a trusted range, and nowhere else private', async () => {
    const r = trust(['10.20.0.0/16', 'fd12::/16']);
    expect(await reach(r, '10.20.3.4')).toBe(true);
    expect(await reach(r, 'fd12::5')).toBe(true);
    expect(await reach(r, '10.21.0.1')).toBe(false);
    expect(await reach(r, '192.168.1.1')).toBe(false);
    expect(await reach(r, '127.0.0.1')).toBe(false);
    expect(await reach(r, '169.254.169.254')).toBe(false);
  });

  it('opens loopback, the host itself and metadata only when the address is named', async () => {
    const broad = trust(['127.0.0.0/8', '169.254.0.0/16', '192.168.0.0/16']);
    expect(await reach(broad, '127.0.0.2')).toBe(false);
    expect(await reach(broad, '169.254.169.254')).toBe(false);
    expect(await reach(broad, '192.168.7.5')).toBe(false); // the host's own interface
    expect(await reach(broad, '169.254.10.1')).toBe(true); // link-local, not metadata
    expect(await reach(broad, '192.168.7.6')).toBe(true);
    const named = trust(['127.0.0.2', '169.254.169.254/32', '192.168.7.5']);
    expect(await reach(named, '127.0.0.2')).toBe(true);
    expect(await reach(named, '127.0.0.3')).toBe(false);
    expect(await reach(named, '169.254.169.254')).toBe(true);
    expect(await reach(named, '192.168.7.5')).toBe(true);
  });

  it('lets the denied ranges win, and judges IPv6 forms by their IPv4 address', async () => {
    expect(await reach(trust(['10.0.0.0/8'], ['10.9.0.0/16']), '10.9.1.1')).toBe(false);
    expect(await reach(trust(['10.0.0.0/8']), '::ffff:10.1.1.1')).toBe(false);
    expect(await reach(trust(['10.0.0.0/8']), '::ffff:a9fe:a9fe')).toBe(false);
  });

  it('refuses a malformed trusted range at construction', () => {
    expect(() => new Resolver({ trustedCidrs: ['10.0.0.0/40'] })).toThrow(/10\.0\.0\.0\/40/);
  });
});
