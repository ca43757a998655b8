import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  BundleError,
  bundleFromUpload,
  bundleFromZip,
  bundleToZip,
  skillNameProblem,
  MAX_DESCRIPTION,
  BUNDLE_LIMITS,
  type SkillBundle,
} from '@berth/skill-bundle';
import type { Clock } from '../clock.js';
import { unixSeconds } from '../clock.js';
import { InvalidRequestError, NotFoundError } from '../errors.js';
import { isId, newId } from '../ids.js';
import type { Page, PageRequest } from '../pagination.js';
import type { BlobStore } from '../ports/blob-store.js';
import type { SkillRecord, SkillStore, SkillVersionRecord } from '../ports/skill-store.js';

/** Where skills appear inside a sandbox: one read-only directory each. */
export const SKILLS_ROOT = '/mnt/skills';
/** Upstream's bound on skills per container. */
export const MAX_CONTAINER_SKILLS = 200;

export interface SkillsServiceOptions {
  store: SkillStore;
  blobs: BlobStore;
  clock: Clock;
}

export interface UploadedPart {
  name: string;
  data: Buffer;
}

/** A skill as given at container create, with the inline zip already decoded. */
export type ContainerSkillParam =
  | { type: 'skill_reference'; skillId: string; version?: string | undefined }
  | { type: 'inline'; name: string; description: string; zip: Buffer };

/** A skill ready to be placed in a sandbox, at `path`. */
export interface ResolvedSkill {
  name: string;
  description: string;
  path: string;
  files: SkillBundle['files'];
  bytes: number;
}

/** Version ids carry their number (`skillver_<8 hex number><24 hex random>`): an id alone is a cursor. */
const VERSION_PREFIX = 'skillver_';
export const versionId = (version: number): string =>
  `${VERSION_PREFIX}${version.toString(16).padStart(8, '0')}${randomBytes(12).toString('hex')}`;
export function versionOfId(id: string): number | null {
  if (!/^skillver_[0-9a-f]{32}$/.test(id)) return null;
  const n = Number.parseInt(id.slice(VERSION_PREFIX.length, VERSION_PREFIX.length + 8), 16);
  return n > 0 ? n : null;
}

const skillNotFound = (id: string) => new NotFoundError(`No skill found with id '${id}'.`);
const versionNotFound = (id: string, v: string) =>
  new NotFoundError(`No version '${v}' found for skill '${id}'.`);
const POSITIVE = /^[1-9][0-9]{0,8}$/;

function bundleError(error: unknown, param: string): never {
  if (error instanceof BundleError)
    throw new InvalidRequestError(`Invalid skill bundle: ${error.message}`, {
      param,
      cause: error,
    });
  throw error;
}

/** /v1/skills: bundles validated whole before anything is kept; zips in the blob store, rows in Postgres. */
export class SkillsService {
  constructor(private readonly options: SkillsServiceOptions) {}

  async #parseUpload(parts: UploadedPart[]): Promise<SkillBundle> {
    if (parts.length === 0)
      throw new InvalidRequestError("Missing required parameter: 'files'.", { param: 'files' });
    try {
      return await bundleFromUpload(parts);
    } catch (error) {
      bundleError(error, 'files');
    }
  }

  /** Stores the canonical zip first; the caller inserts the row, or drops the blob on failure. */
  async #storeZip(bundle: SkillBundle): Promise<{ blobKey: string }> {
    const zip = await bundleToZip(bundle);
    const blobKey = `skillzip_${randomBytes(16).toString('hex')}`;
    await this.options.blobs.put(blobKey, Readable.from([zip]), {
      maxBytes: BUNDLE_LIMITS.maxZipBytes * 2,
    });
    return { blobKey };
  }

  async #withBlob<T>(blobKey: string, insert: () => Promise<T>): Promise<T> {
    try {
      return await insert();
    } catch (error) {
      await this.options.blobs.delete(blobKey).catch(() => {});
      throw error;
    }
  }

  async create(
    projectId: string,
    parts: UploadedPart[],
  ): Promise<{ skill: SkillRecord; version: SkillVersionRecord }> {
    const bundle = await this.#parseUpload(parts);
    const { blobKey } = await this.#storeZip(bundle);
    const createdAt = unixSeconds(this.options.clock.now());
    const skill: SkillRecord = {
      id: newId('skill', createdAt),
      projectId,
      name: bundle.name,
      description: bundle.description,
      createdAt,
      defaultVersion: 1,
      latestVersion: 1,
    };
    const version: SkillVersionRecord = {
      id: versionId(1),
      skillId: skill.id,
      version: 1,
      name: bundle.name,
      description: bundle.description,
      createdAt,
      bytes: bundle.bytes,
      blobKey,
    };
    await this.#withBlob(blobKey, () => this.options.store.create(skill, version));
    return { skill, version };
  }

  async get(projectId: string, id: string): Promise<SkillRecord> {
    if (!isId('skill', id)) throw skillNotFound(id);
    const skill = await this.options.store.get(projectId, id);
    if (!skill) throw skillNotFound(id);
    return skill;
  }

  list(projectId: string, page: PageRequest): Promise<Page<SkillRecord>> {
    return this.options.store.list(projectId, page);
  }

  async setDefault(projectId: string, id: string, version: string): Promise<SkillRecord> {
    await this.get(projectId, id);
    if (!POSITIVE.test(version))
      throw new InvalidRequestError(
        "Invalid 'default_version': it must be a version number, like '1'.",
        {
          param: 'default_version',
        },
      );
    const result = await this.options.store.setDefault(projectId, id, Number(version));
    if (result === null) throw skillNotFound(id);
    if (result === 'no_version')
      throw new InvalidRequestError(
        `Invalid 'default_version': skill '${id}' has no version ${version}.`,
        {
          param: 'default_version',
        },
      );
    return result;
  }

  async delete(projectId: string, id: string): Promise<void> {
    if (!isId('skill', id)) throw skillNotFound(id);
    const keys = await this.options.store.delete(projectId, id);
    if (!keys) throw skillNotFound(id);
    // The rows are gone: the zips are unreachable now, so a failure here only leaves disk garbage.
    await Promise.all(keys.map((k) => this.options.blobs.delete(k).catch(() => {})));
  }

  async createVersion(
    projectId: string,
    id: string,
    parts: UploadedPart[],
    makeDefault: boolean,
  ): Promise<SkillVersionRecord> {
    await this.get(projectId, id);
    const bundle = await this.#parseUpload(parts);
    const { blobKey } = await this.#storeZip(bundle);
    const created = await this.#withBlob(blobKey, async () => {
      const row = await this.options.store.addVersion(
        projectId,
        id,
        {
          name: bundle.name,
          description: bundle.description,
          createdAt: unixSeconds(this.options.clock.now()),
          bytes: bundle.bytes,
          blobKey,
        },
        versionId,
        makeDefault,
      );
      if (!row) throw skillNotFound(id);
      return row;
    });
    return created;
  }

  /** A version by its number, or `latest`. */
  async getVersion(projectId: string, id: string, version: string): Promise<SkillVersionRecord> {
    const skill = await this.get(projectId, id);
    const n =
      version === 'latest' ? skill.latestVersion : POSITIVE.test(version) ? Number(version) : 0;
    if (!n) throw versionNotFound(id, version);
    const row = await this.options.store.getVersion(projectId, id, n);
    if (!row) throw versionNotFound(id, version);
    return row;
  }

  async listVersions(
    projectId: string,
    id: string,
    page: PageRequest,
  ): Promise<Page<SkillVersionRecord>> {
    await this.get(projectId, id);
    let afterVersion: number | undefined;
    if (page.after !== undefined) {
      const n = versionOfId(page.after);
      if (n === null)
        throw new InvalidRequestError(
          `Invalid 'after': '${page.after}' is not a skill version id.`,
          {
            param: 'after',
          },
        );
      afterVersion = n;
    }
    return this.options.store.listVersions(projectId, id, {
      limit: page.limit,
      order: page.order,
      ...(afterVersion !== undefined ? { afterVersion } : {}),
    });
  }

  async deleteVersion(projectId: string, id: string, version: string): Promise<SkillVersionRecord> {
    const row = await this.getVersion(projectId, id, version);
    const result = await this.options.store.deleteVersion(projectId, id, row.version);
    if (result === null) throw versionNotFound(id, version);
    if (result === 'is_default')
      throw new InvalidRequestError(
        `Version ${row.version} is the default version of skill '${id}'; set another default first, or delete the skill.`,
        { param: 'version' },
      );
    await this.options.blobs.delete(result.blobKey).catch(() => {});
    return result;
  }

  async #open(
    row: SkillVersionRecord,
  ): Promise<{ filename: string; size: number; stream: Readable }> {
    const blob = await this.options.blobs.open(row.blobKey);
    if (!blob) throw new Error(`skill version ${row.id} has no zip in the blob store`);
    return { filename: `${row.name}.zip`, ...blob };
  }

  async content(projectId: string, id: string) {
    const skill = await this.get(projectId, id);
    return this.#open(await this.getVersion(projectId, id, String(skill.defaultVersion)));
  }

  async versionContent(projectId: string, id: string, version: string) {
    return this.#open(await this.getVersion(projectId, id, version));
  }

  async #readZip(row: SkillVersionRecord, param: string): Promise<Buffer> {
    const blob = await this.options.blobs.open(row.blobKey);
    // Deleted between its row being read and now.
    if (!blob)
      throw new InvalidRequestError(
        `Skill version ${row.version} of '${row.skillId}' was just deleted.`,
        {
          param,
        },
      );
    const { stream } = blob;
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /**
   * Resolves and validates every skill of a container create before anything is created: a
   * reference names a version (an integer, `latest`, or none for the default), an inline skill is
   * checked like an upload. Two skills may not share a directory. Errors name `skills.N`.
   */
  async resolve(
    projectId: string,
    params: ContainerSkillParam[],
    budget: { maxBytes: number; over: (bytes?: number) => Error },
  ): Promise<ResolvedSkill[]> {
    if (params.length > MAX_CONTAINER_SKILLS)
      throw new InvalidRequestError(
        `Too many skills: at most ${MAX_CONTAINER_SKILLS} per container.`,
        { param: 'skills' },
      );
    const out: ResolvedSkill[] = [];
    const names = new Map<string, number>();
    // Unpacked bytes are counted as they are read, so a create can't make this process hold more
    // than its budget: a reference is judged by its row before its zip is read, an inline zip by
    // its declared sizes before it is inflated.
    let used = 0;
    for (const [i, p] of params.entries()) {
      let resolved: Omit<ResolvedSkill, 'path'>;
      if (p.type === 'skill_reference') {
        const skill = isId('skill', p.skillId)
          ? await this.options.store.get(projectId, p.skillId)
          : null;
        if (!skill)
          throw new InvalidRequestError(`No skill found with id '${p.skillId}'.`, {
            param: `skills.${i}.skill_id`,
          });
        const version = p.version ?? String(skill.defaultVersion);
        if (version !== 'latest' && !POSITIVE.test(version))
          throw new InvalidRequestError(
            `Invalid 'skills.${i}.version': use a positive integer or 'latest'.`,
            { param: `skills.${i}.version` },
          );
        const n = version === 'latest' ? skill.latestVersion : Number(version);
        const row = await this.options.store.getVersion(projectId, p.skillId, n);
        if (!row)
          throw new InvalidRequestError(`Skill '${p.skillId}' has no version '${version}'.`, {
            param: `skills.${i}.version`,
          });
        if (used + row.bytes > budget.maxBytes) throw budget.over(used + row.bytes);
        const bundle = await bundleFromZip(await this.#readZip(row, `skills.${i}.skill_id`)).catch(
          (e: unknown) => bundleError(e, `skills.${i}`),
        );
        resolved = {
          name: row.name,
          description: row.description,
          files: bundle.files,
          bytes: bundle.bytes,
        };
      } else {
        const problem = skillNameProblem(p.name);
        if (problem)
          throw new InvalidRequestError(`Invalid 'skills.${i}.name': ${problem}.`, {
            param: `skills.${i}.name`,
          });
        if (p.description.length > MAX_DESCRIPTION)
          throw new InvalidRequestError(
            `Invalid 'skills.${i}.description': at most ${MAX_DESCRIPTION} characters.`,
            { param: `skills.${i}.description` },
          );
        const remaining = budget.maxBytes - used;
        const bundle = await bundleFromZip(p.zip, { maxTotalBytes: remaining }).catch(
          (e: unknown) => {
            if (
              e instanceof BundleError &&
              remaining < BUNDLE_LIMITS.maxTotalBytes &&
              /bytes in total/.test(e.message)
            )
              throw budget.over();
            return bundleError(e, `skills.${i}.source.data`);
          },
        );
        resolved = {
          name: p.name,
          description: p.description,
          files: bundle.files,
          bytes: bundle.bytes,
        };
      }
      const clash = names.get(resolved.name);
      if (clash !== undefined)
        throw new InvalidRequestError(
          `skills.${i} and skills.${clash} are both named '${resolved.name}'; each skill needs its own directory under ${SKILLS_ROOT}.`,
          { param: `skills.${i}` },
        );
      names.set(resolved.name, i);
      used += resolved.bytes;
      out.push({ ...resolved, path: `${SKILLS_ROOT}/${resolved.name}` });
    }
    return out;
  }
}
