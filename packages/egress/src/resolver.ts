import { lookup as dnsLookup } from 'node:dns/promises';
import { isPublicUnicast, isTrustedAddress, parseCidrs } from './address-guard.js';
import type { Cidr } from './ip.js';

export class EgressDenied extends Error {}

export interface ResolverOptions {
  /** Injected for tests; default `dns.promises.lookup(name, {all: true})`. */
  lookup?: (host: string) => Promise<string[]>;
  /**
   * Test only (off by default, refused in production): `host:port` → a local upstream, reached
   * directly, without DNS and without the address guard.
   */
  testUpstreams?: ReadonlyMap<string, { host: string; port: number }>;
  /** This host's own addresses, refused like private ones; default: read from the interfaces. */
  ownAddresses?: Set<string>;
  /**
   * More ranges to refuse, IPv4 or IPv6 (`10.20.0.0/16`, `2001:db8:5::/48`, a bare address): the
   * deployment's own hosts, which the API's interfaces may not show (e.g. under docker compose).
   * A malformed entry throws here, at construction.
   */
  denyCidrs?: readonly string[];
  /**
   * Non-public ranges allowlisted names may resolve to (an internal mirror, split-horizon DNS).
   * Loopback, the host's own addresses and metadata endpoints need an entry naming the address
   * itself; `denyCidrs` still wins. A malformed entry throws here, at construction.
   */
  trustedCidrs?: readonly string[];
}

/**
 * Resolves a destination itself (never trusting the client's resolution) and pins the address
 * it checked. If any address of the name is not public unicast, the name is refused outright:
 * a name that mixes private and public answers is an attack, not a choice.
 */
export class Resolver {
  readonly #lookup: (host: string) => Promise<string[]>;
  readonly #deny: readonly Cidr[];
  readonly #trust: readonly Cidr[];
  constructor(private readonly options: ResolverOptions = {}) {
    this.#deny = parseCidrs(options.denyCidrs ?? []);
    this.#trust = parseCidrs(options.trustedCidrs ?? []);
    this.#lookup =
      options.lookup ??
      (async (host) =>
        (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address));
  }

  async resolve(host: string, port: number): Promise<{ address: string; port: number }> {
    const upstream = this.options.testUpstreams?.get(`${host}:${port}`);
    if (upstream) return { address: upstream.host, port: upstream.port };
    let addresses: string[];
    try {
      addresses = await this.#lookup(host);
    } catch {
      throw new EgressDenied(`${host} does not resolve`);
    }
    if (addresses.length === 0) throw new EgressDenied(`${host} does not resolve`);
    const own = this.options.ownAddresses;
    const bad = addresses.find(
      (a) =>
        !isPublicUnicast(a, own, this.#deny) && !isTrustedAddress(a, this.#trust, own, this.#deny),
    );
    if (bad) throw new EgressDenied(`${host} resolves to ${bad}, which is not a public address`);
    return { address: addresses[0]!, port };
  }
}
