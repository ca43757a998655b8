import type { ResolvedSkill } from '../use-cases/skills-service.js';

/** Places skills in a running sandbox, read-only to its code, each under its `path`. */
export interface SkillInstaller {
  install(containerId: string, skills: ResolvedSkill[]): Promise<void>;
}

/** How a container shows one of its skills. */
export interface ContainerSkillInfo {
  name: string;
  description: string;
  path: string;
}

export interface ContainerSkillStore {
  save(containerId: string, skills: ContainerSkillInfo[]): Promise<void>;
  /** The skills of each container that has any. */
  forContainers(containerIds: string[]): Promise<Map<string, ContainerSkillInfo[]>>;
}
