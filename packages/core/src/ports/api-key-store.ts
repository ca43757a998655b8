export interface ApiKeyRecord {
  id: string;
  projectId: string;
  name: string;
  /** The first characters of the key, for people to tell keys apart. */
  prefix: string;
  createdAt: Date;
  revokedAt: Date | null;
}

export interface ApiKeyStore {
  /** The project id for a key's sha256 hash, if the key exists and is not revoked. */
  findProjectByHash(hash: Buffer): Promise<string | null>;
  create(input: {
    projectId: string;
    name: string;
    prefix: string;
    hash: Buffer;
  }): Promise<ApiKeyRecord>;
  list(projectId?: string): Promise<ApiKeyRecord[]>;
  revoke(id: string): Promise<boolean>;
  /** Creates the project if missing; returns its id. */
  ensureProject(name: string): Promise<string>;
}
