import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** Seals secrets for storage; what is sealed for one container opens only for that container. */
export interface SecretBox {
  seal(containerId: string, plaintext: string): string;
  /** Throws when the value was sealed with another key or for another container, or was altered. */
  open(containerId: string, sealed: string): string;
}

const VERSION = 'v1';

/**
 * AES-256-GCM with a random 96-bit nonce per value and the container id as associated data, so a
 * sealed value copied into another row does not open. Stored as `v1.<nonce>.<tag>.<ciphertext>`
 * (base64url).
 */
export class AesGcmSecretBox implements SecretBox {
  readonly #key: Buffer;
  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('the secrets key must be 32 bytes (AES-256)');
    this.#key = Buffer.from(key);
  }

  /** Reads a key given as 64 hex digits or as base64 of 32 bytes; throws otherwise. */
  static parseKey(text: string): Buffer {
    const key = /^[0-9a-f]{64}$/i.test(text)
      ? Buffer.from(text, 'hex')
      : Buffer.from(text, 'base64');
    if (key.length !== 32)
      throw new Error('must be 32 bytes, as 64 hex digits or base64 (openssl rand -base64 32)');
    return key;
  }

  seal(containerId: string, plaintext: string): string {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    cipher.setAAD(Buffer.from(containerId));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, nonce, cipher.getAuthTag(), body]
      .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
      .join('.');
  }

  open(containerId: string, sealed: string): string {
    const [version, nonce, tag, body, extra] = sealed.split('.');
    if (version !== VERSION || !nonce || !tag || body === undefined || extra !== undefined)
      throw new Error('not a sealed secret');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(nonce, 'base64url'));
    decipher.setAAD(Buffer.from(containerId));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([
      decipher.update(Buffer.from(body, 'base64url')),
      decipher.final(),
    ]).toString('utf8');
  }
}

/** A placeholder a sandbox sees instead of a secret: random, so it can't be guessed or forged. */
export const newPlaceholder = (): string => `berth_secret_${randomBytes(24).toString('hex')}`;
