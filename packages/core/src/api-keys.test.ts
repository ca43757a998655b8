import { describe, expect, it } from 'vitest';
import { Authenticator, generateApiKey, hashApiKey } from './api-keys.js';
import { AuthenticationError } from './errors.js';
import type { ApiKeyStore } from './ports/api-key-store.js';

function storeWith(keys: Map<string, string>): ApiKeyStore {
  return {
    findProjectByHash: async (hash) => keys.get(hash.toString('hex')) ?? null,
    create: async () => {
      throw new Error('unused');
    },
    list: async () => [],
    revoke: async () => false,
    ensureProject: async () => 'unused',
  };
}

describe('Authenticator', () => {
  const stored = generateApiKey();
  const store = storeWith(new Map([[stored.hash.toString('hex'), 'proj_a']]));
  const auth = new Authenticator(store, {
    key: 'bootstrap-key-long-enough-0001',
    projectId: 'proj_boot',
  });

  it('resolves a stored key and the bootstrap key to their projects', async () => {
    await expect(auth.authenticate(`Bearer ${stored.key}`)).resolves.toBe('proj_a');
    await expect(auth.authenticate('Bearer bootstrap-key-long-enough-0001')).resolves.toBe(
      'proj_boot',
    );
  });

  it('rejects missing, malformed and unknown keys with invalid_api_key', async () => {
    for (const header of [
      undefined,
      '',
      'Basic abc',
      'Bearer',
      `Bearer ${stored.key}x`,
      'bootstrap-key-long-enough-0001',
    ]) {
      const error = await auth.authenticate(header).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AuthenticationError);
      expect((error as AuthenticationError).code).toBe('invalid_api_key');
      expect((error as AuthenticationError).status).toBe(401);
    }
  });

  it('stores only a hash and a short prefix', () => {
    expect(stored.key).toMatch(/^sk-berth-[A-Za-z0-9_-]{43}$/);
    expect(stored.hash.equals(hashApiKey(stored.key))).toBe(true);
    expect(stored.key.startsWith(stored.prefix)).toBe(true);
    expect(stored.prefix.length).toBeLessThan(20);
  });
});
