/** An IP address as bytes: 4 for IPv4, 16 for IPv6. Comparing bytes, not text, sees every spelling. */
export interface IpBytes {
  family: 4 | 6;
  bytes: Uint8Array;
}

export interface Cidr extends IpBytes {
  prefix: number;
}

function parseV4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    // Decimal only, no leading zeros: `010` is octal to some parsers and decimal to others.
    if (!/^(?:0|[1-9]\d{0,2})$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    bytes[i] = n;
  }
  return bytes;
}

function parseGroups(text: string): number[] | null {
  if (text === '') return [];
  const groups: number[] = [];
  for (const group of text.split(':')) {
    if (!/^[0-9a-f]{1,4}$/i.test(group)) return null;
    groups.push(Number.parseInt(group, 16));
  }
  return groups;
}

function parseV6(input: string): Uint8Array | null {
  // A zone (`fe80::1%eth0`) names an interface, not a different address.
  const text = input.split('%', 1)[0]!;
  let tail: Uint8Array | null = null;
  let rest = text;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tail = parseV4(text.slice(lastColon + 1));
    if (!tail) return null;
    rest = text.slice(0, lastColon + 1) + '0:0'; // two placeholder groups, overwritten below
  }
  const halves = rest.split('::');
  if (halves.length > 2) return null;
  const head = parseGroups(halves[0]!);
  const back = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (!head || !back) return null;
  const missing = 8 - head.length - back.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...Array<number>(missing).fill(0), ...back];
  const bytes = new Uint8Array(16);
  for (const [i, g] of groups.entries()) {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 255;
  }
  if (tail) bytes.set(tail, 12);
  return bytes;
}

/** Parses an IPv4 or IPv6 address in any textual form; null when it is not one. */
export function parseIp(text: string): IpBytes | null {
  if (text.includes(':')) {
    const bytes = parseV6(text);
    return bytes ? { family: 6, bytes } : null;
  }
  const bytes = parseV4(text);
  return bytes ? { family: 4, bytes } : null;
}

/** Parses `address/prefix` (or a bare address, as a single-address range); throws when malformed. */
export function parseCidr(text: string): Cidr {
  const [address, prefixText, extra] = text.trim().split('/');
  const ip = parseIp(address ?? '');
  const max = ip?.family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (
    !ip ||
    extra !== undefined ||
    (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) ||
    prefix > max
  )
    throw new Error(`'${text}' is not an IPv4 or IPv6 CIDR (like 10.1.0.0/16 or fd00::/8)`);
  return { ...ip, prefix };
}

export function inCidr(ip: IpBytes, cidr: Cidr): boolean {
  if (ip.family !== cidr.family) return false;
  const whole = cidr.prefix >> 3;
  for (let i = 0; i < whole; i++) if (ip.bytes[i] !== cidr.bytes[i]) return false;
  const bits = cidr.prefix & 7;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return (ip.bytes[whole]! & mask) === (cidr.bytes[whole]! & mask);
}
