import { domainToASCII } from 'node:url';
import { isIP } from 'node:net';
import { parse as parseDomain } from 'tldts';

/** One allowlist entry: an exact host, or every subdomain of `suffix` for `*.suffix`. */
export type Rule = { kind: 'exact'; host: string } | { kind: 'wildcard'; suffix: string };

export type AllowlistResult =
  { ok: true; rules: Rule[] } | { ok: false; index: number; message: string };

// Reserved names tests and internal networks use; fine as exact entries, never as wildcards.
const RESERVED_TLDS = new Set(['test', 'localhost', 'invalid', 'example', 'local', 'internal']);
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const IPV4_LIKE = /^(0x[0-9a-f]+|\d+)(\.(0x[0-9a-f]+|\d+)){0,3}$/i;

/** Lowercase, one trailing dot dropped, IDN to punycode; null when it is not a hostname. */
export function normalizeHost(input: string): string | null {
  if (!input || input.length > 255 || /[\s/\\@:?#[\]%]/.test(input)) return null;
  const trimmed = input.endsWith('.') ? input.slice(0, -1) : input;
  const ascii = domainToASCII(trimmed.toLowerCase());
  if (!ascii || ascii.length > 253) return null;
  const labels = ascii.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l))) return null;
  // Names that parse as IPv4 in some notation (2130706433, 0x7f.1, 127.1) are addresses, not hosts.
  if (IPV4_LIKE.test(ascii) || isIP(ascii)) return null;
  return ascii;
}

function describe(entry: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry))
    return 'a scheme is not allowed; give a bare hostname';
  if (/^\[|^[0-9a-f:]+:[0-9a-f:]*$/i.test(entry) || isIP(entry) || IPV4_LIKE.test(entry))
    return 'IP addresses are not allowed; give a hostname';
  if (entry.includes('@')) return 'userinfo is not allowed';
  if (/[/?#]/.test(entry)) return 'paths, queries and fragments are not allowed';
  if (/:\d*$/.test(entry)) return 'ports are not allowed (only 80 and 443 are ever reachable)';
  return null;
}

/** Validates and normalises `allowed_domains`; a failure names the entry's index. */
export function parseAllowlist(
  entries: readonly string[],
  { maxEntries }: { maxEntries: number },
): AllowlistResult {
  if (entries.length > maxEntries) {
    return { ok: false, index: maxEntries, message: `at most ${maxEntries} domains are allowed` };
  }
  const rules: Rule[] = [];
  for (const [index, raw] of entries.entries()) {
    const problem = describe(raw);
    if (problem) return { ok: false, index, message: problem };
    const wildcard = raw.startsWith('*.');
    const body = wildcard ? raw.slice(2) : raw;
    if (body.includes('*'))
      return { ok: false, index, message: "a wildcard may only be a leading '*.'" };
    if (wildcard && !body.replace(/\.$/, '').includes('.')) {
      return {
        ok: false,
        index,
        message: `a wildcard on a public suffix ('${raw}') would allow a whole registry`,
      };
    }
    const host = normalizeHost(body);
    if (!host) return { ok: false, index, message: `'${raw}' is not a valid hostname` };
    const parsed = parseDomain(host, { allowPrivateDomains: true });
    const tld = host.slice(host.lastIndexOf('.') + 1);
    const isSuffix = parsed.publicSuffix === host || (RESERVED_TLDS.has(tld) && host === tld);
    if (wildcard && (isSuffix || RESERVED_TLDS.has(host))) {
      return {
        ok: false,
        index,
        message: `a wildcard on a public suffix ('${raw}') would allow a whole registry`,
      };
    }
    if (!wildcard && parsed.publicSuffix === host) {
      return { ok: false, index, message: `'${raw}' is a public suffix, not a host` };
    }
    rules.push(wildcard ? { kind: 'wildcard', suffix: host } : { kind: 'exact', host });
  }
  return { ok: true, rules };
}

/** The rule a requested host matches, or null. Wildcards match subdomains only, never the apex. */
export function matchHost(requested: string, rules: readonly Rule[]): Rule | null {
  const host = normalizeHost(requested);
  if (!host) return null;
  for (const rule of rules) {
    if (rule.kind === 'exact' ? host === rule.host : host.endsWith(`.${rule.suffix}`)) return rule;
  }
  return null;
}

export const ruleToString = (rule: Rule): string =>
  rule.kind === 'exact' ? rule.host : `*.${rule.suffix}`;
