import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it loaded first
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto } from 'node:crypto';
import tls from 'node:tls';

x509.cryptoProvider.set(webcrypto as never);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Leaves are minted for this long and re-minted a day before they lapse. */
const LEAF_LIFETIME = 30 * DAY;

const serial = () => {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f; // a positive integer
  return bytes.toString('hex');
};

interface Leaf {
  context: tls.SecureContext;
  notAfter: number;
}

/**
 * A sandbox's own certificate authority, made when its proxy starts serving secrets. Its private
 * key is a non-extractable WebCrypto key: it can sign but can't be written out, so it exists in
 * no file and in no sandbox. Only the certificate leaves this object (for the sandbox's trust
 * bundle). Leaf certificates, one per intercepted host, are minted on first use and kept.
 */
export class SandboxCa {
  readonly #leaves = new Map<string, Promise<Leaf>>();
  private constructor(
    private readonly keys: webcrypto.CryptoKeyPair,
    private readonly cert: x509.X509Certificate,
    private readonly now: () => number,
  ) {}

  static async create(label: string, now: () => number = Date.now): Promise<SandboxCa> {
    const keys = (await webcrypto.subtle.generateKey(ALG, false, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const at = now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: `CN=Berth egress CA for ${label}, O=Berth`,
      notBefore: new Date(at - HOUR),
      notAfter: new Date(at + 3650 * DAY),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return new SandboxCa(keys, cert, now);
  }

  get certPem(): string {
    return this.cert.toString('pem');
  }

  /** The TLS context presenting a leaf for `host`, signed by this CA. */
  async contextFor(host: string): Promise<tls.SecureContext> {
    let leaf = this.#leaves.get(host);
    const fresh = leaf && (await leaf.catch(() => null));
    if (!fresh || fresh.notAfter - DAY < this.now()) {
      leaf = this.#mint(host);
      this.#leaves.set(host, leaf);
      leaf.catch(() => this.#leaves.delete(host));
    }
    return (await leaf!).context;
  }

  async #mint(host: string): Promise<Leaf> {
    const keys = (await webcrypto.subtle.generateKey(ALG, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const at = this.now();
    const notAfter = at + LEAF_LIFETIME;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${host}`,
      issuer: this.cert.subject,
      notBefore: new Date(at - HOUR),
      notAfter: new Date(notAfter),
      publicKey: keys.publicKey,
      signingKey: this.keys.privateKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: host }]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(this.cert),
      ],
    });
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
    const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`;
    return {
      context: tls.createSecureContext({ key, cert: `${cert.toString('pem')}\n${this.certPem}` }),
      notAfter,
    };
  }
}
