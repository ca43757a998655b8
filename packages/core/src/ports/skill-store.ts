import type { Page, PageRequest } from '../pagination.js';

export interface SkillRecord {
  id: string;
  projectId: string;
  /** The default version's. */
  name: string;
  description: string;
  createdAt: number;
  defaultVersion: number;
  latestVersion: number;
}

export interface SkillVersionRecord {
  id: string;
  skillId: string;
  version: number;
  name: string;
  description: string;
  createdAt: number;
  /** Unpacked size of the bundle. */
  bytes: number;
  /** Where the version's zip is in the blob store. */
  blobKey: string;
}

/** What a new version carries before the store numbers it. */
export type NewSkillVersion = Omit<SkillVersionRecord, 'id' | 'skillId' | 'version'>;

export interface SkillStore {
  /** The skill and its version 1, together. */
  create(skill: SkillRecord, first: SkillVersionRecord): Promise<void>;
  get(projectId: string, id: string): Promise<SkillRecord | null>;
  list(projectId: string, page: PageRequest): Promise<Page<SkillRecord>>;
  /**
   * Numbers and inserts the next version (numbers are never reused); `makeDefault` also points the
   * skill at it. `idFor` names the version once its number is known. Null when the skill is gone.
   */
  addVersion(
    projectId: string,
    skillId: string,
    version: NewSkillVersion,
    idFor: (version: number) => string,
    makeDefault: boolean,
  ): Promise<SkillVersionRecord | null>;
  /** Points the skill at an existing version; 'no_version' when there is none with that number. */
  setDefault(
    projectId: string,
    skillId: string,
    version: number,
  ): Promise<SkillRecord | 'no_version' | null>;
  /** Removes the skill and its versions; returns the blob keys to drop, or null when not found. */
  delete(projectId: string, id: string): Promise<string[] | null>;
  getVersion(
    projectId: string,
    skillId: string,
    version: number,
  ): Promise<SkillVersionRecord | null>;
  /** Ordered by version number; `after` is a version id, which encodes its number. */
  listVersions(
    projectId: string,
    skillId: string,
    page: PageRequest & { afterVersion?: number },
  ): Promise<Page<SkillVersionRecord>>;
  /** 'is_default' when it is the skill's default version (which can't be deleted). */
  deleteVersion(
    projectId: string,
    skillId: string,
    version: number,
  ): Promise<SkillVersionRecord | 'is_default' | null>;
}
