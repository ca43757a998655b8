import type { ResolvedSkill } from './use-cases/skills-service.js';

const PAGE = 4096;
const MIB = 1024 * 1024;

/**
 * What the sandbox's skills file system (a tmpfs, charged to the memory limit) must hold: each
 * file rounded up to whole pages, a page per directory, and a little room for the root.
 */
export function skillsFootprint(skills: ResolvedSkill[]): { bytes: number; inodes: number } {
  let bytes = MIB;
  let inodes = 16;
  for (const skill of skills) {
    const dirs = new Set<string>(['']);
    for (const f of skill.files) {
      bytes += Math.max(PAGE, Math.ceil(f.data.length / PAGE) * PAGE);
      inodes += 1;
      const parts = f.path.split('/');
      for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
    }
    bytes += dirs.size * PAGE;
    inodes += dirs.size;
  }
  return { bytes: Math.ceil(bytes / MIB) * MIB, inodes };
}

/**
 * What a sandbox's skills may take (ours): an eighth of its memory, like /tmp, so a container with
 * skills keeps room for processes (1g: 128 MiB), and at most 512 MiB, because the API holds a
 * create's skills in memory while it places them.
 */
export const MAX_SKILLS_BYTES = 512 * MIB;
export const skillsBudgetBytes = (memoryLimitBytes: number): number =>
  Math.min(MAX_SKILLS_BYTES, Math.floor(memoryLimitBytes / 8));
