import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AuthenticationError } from './errors.js';
import type { ApiKeyStore } from './ports/api-key-store.js';

const KEY_PREFIX = 'sk-berth-';

/** A new secret key: 32 random bytes, base64url. Only its sha256 is ever stored. */
export function generateApiKey(): { key: string; prefix: string; hash: Buffer } {
  const key = KEY_PREFIX + randomBytes(32).toString('base64url');
  return { key, prefix: key.slice(0, KEY_PREFIX.length + 6), hash: hashApiKey(key) };
}

export const hashApiKey = (key: string): Buffer =>
  createHash('sha256').update(key, 'utf8').digest();

/**
 * Resolves a bearer token to its project. The lookup is by hash, so timing reveals nothing about
 * stored keys; the bootstrap key from configuration is compared in constant time.
 */
export class Authenticator {
  readonly #bootstrapHash: Buffer | null;

  constructor(
    private readonly keys: ApiKeyStore,
    private readonly bootstrap: { key: string; projectId: string } | null,
  ) {
    this.#bootstrapHash = bootstrap ? hashApiKey(bootstrap.key) : null;
  }

  async authenticate(authorization: string | undefined): Promise<string> {
    const match = /^Bearer\s+(\S{1,512})\s*$/i.exec(authorization ?? '');
    if (!match?.[1]) {
      throw new AuthenticationError(
        "You didn't provide an API key. Provide it in the Authorization header as 'Bearer YOUR_KEY'.",
      );
    }
    const hash = hashApiKey(match[1]);
    if (this.#bootstrapHash && this.bootstrap && timingSafeEqual(hash, this.#bootstrapHash)) {
      return this.bootstrap.projectId;
    }
    const projectId = await this.keys.findProjectByHash(hash);
    if (!projectId) throw new AuthenticationError();
    return projectId;
  }
}
