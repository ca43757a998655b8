import { networkInterfaces } from 'node:os';
import { inCidr, parseCidr, parseIp, type Cidr, type IpBytes } from './ip.js';

const BLOCKED: readonly Cidr[] = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.88.99.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '::/128',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
  'ff00::/8',
  '2001:db8::/32',
  '3fff::/20', // documentation (RFC 9637)
  '100::/64',
  // IETF protocol assignments, Teredo 2001::/32 among them: a Teredo relay reaches any IPv4
  // address, so the range is refused whatever it embeds.
  '2001::/23',
  '64:ff9b:1::/48', // local-use NAT64: translates to whatever the local network chooses
  'fec0::/10',
].map(parseCidr);

/**
 * The IPv4 addresses an IPv6 address stands for: IPv4-compatible `::/96`, IPv4-mapped
 * `::ffff:0:0/96`, IPv4-translated `::ffff:0:0:0/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`.
 */
function embeddedV4(ip: IpBytes): IpBytes[] {
  const b = ip.bytes;
  const zero = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
  const v4 = (at: number): IpBytes => ({ family: 4, bytes: b.slice(at, at + 4) });
  if (zero(0, 10) && ((b[10] === 0 && b[11] === 0) || (b[10] === 0xff && b[11] === 0xff)))
    return [v4(12)];
  if (zero(0, 8) && b[8] === 0xff && b[9] === 0xff && b[10] === 0 && b[11] === 0) return [v4(12)];
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(4, 12)) return [v4(12)];
  if (b[0] === 0x20 && b[1] === 0x02) return [v4(2)];
  return [];
}

/**
 * Addresses a trusted range never covers unless it names them one by one (a /32 or /128 entry):
 * the host's own services (loopback, its interfaces) and the cloud metadata endpoints.
 */
const SENSITIVE: readonly Cidr[] = [
  '127.0.0.0/8',
  '::1/128',
  '169.254.169.254/32', // AWS, GCP, Azure, OpenStack
  '169.254.170.2/32', // AWS ECS task metadata
  '100.100.100.200/32', // Alibaba Cloud
  'fd00:ec2::254/128', // AWS over IPv6
].map(parseCidr);

const ownAddresses = (): Set<string> =>
  new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)));

/** Parses extra denied ranges (IPv4 or IPv6 CIDRs, or single addresses); throws on a bad one. */
export function parseCidrs(list: readonly string[]): Cidr[] {
  return list.map(parseCidr);
}

function publicBytes(ip: IpBytes, denied: readonly Cidr[]): boolean {
  if (denied.some((c) => inCidr(ip, c))) return false;
  if (ip.family === 6) return embeddedV4(ip).every((v4) => publicBytes(v4, denied));
  return true;
}

/**
 * Public unicast only: never loopback, private, link-local (metadata endpoints), CGNAT,
 * documentation, multicast or reserved ranges, nor one of this host's own addresses, nor a range
 * the deployment denies (`deny`, e.g. its hosts' addresses the API's own interfaces don't show).
 * IPv6 forms that embed an IPv4 address are judged by the IPv4 address too.
 */
export function isPublicUnicast(
  ip: string,
  own: Set<string> = ownAddresses(),
  deny: readonly Cidr[] = [],
): boolean {
  const parsed = parseIp(ip);
  if (!parsed) return false;
  const ownRanges: Cidr[] = [];
  for (const address of own) {
    const o = parseIp(address);
    if (o) ownRanges.push({ ...o, prefix: o.family === 4 ? 32 : 128 });
  }
  return publicBytes(parsed, [...BLOCKED, ...deny, ...ownRanges]);
}

const sameAddress = (a: IpBytes, b: IpBytes) =>
  a.family === b.family && a.bytes.every((x, i) => x === b.bytes[i]);

/**
 * An address the deployment trusts although it isn't public (an internal mirror, split-horizon
 * DNS): inside one of `trust`, never in `deny`, and, if it is one of the host's own addresses,
 * loopback or a metadata endpoint, named by a single-address entry of its own, so a broad range
 * like `10.0.0.0/8` or `127.0.0.0/8` never opens the host's services by accident. An IPv6 form
 * embedding an IPv4 address is judged by that IPv4 address as well.
 */
export function isTrustedAddress(
  ip: string,
  trust: readonly Cidr[],
  own: Set<string> = ownAddresses(),
  deny: readonly Cidr[] = [],
): boolean {
  const parsed = parseIp(ip);
  if (!parsed || trust.length === 0) return false;
  const ownIps = [...own].map(parseIp).filter((o): o is IpBytes => o !== null);
  const ok = (a: IpBytes): boolean => {
    if (deny.some((c) => inCidr(a, c))) return false;
    if (!trust.some((c) => inCidr(a, c))) return false;
    const sensitive = SENSITIVE.some((c) => inCidr(a, c)) || ownIps.some((o) => sameAddress(o, a));
    const exact = trust.some((c) => c.prefix === (c.family === 4 ? 32 : 128) && inCidr(a, c));
    return !sensitive || exact;
  };
  if (!ok(parsed)) return false;
  if (parsed.family === 6)
    return embeddedV4(parsed).every((v4) => publicBytes(v4, [...BLOCKED, ...deny]) || ok(v4));
  return true;
}
