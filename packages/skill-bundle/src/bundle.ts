import { BundleError } from './bundle-error.js';
import { pathProblem, readZip, type ZipFileEntry, type ZipLimits } from './zip-reader.js';
import { writeZip } from './zip-writer.js';

const MIB = 1024 * 1024;

/**
 * Upstream's limits (50 MB zipped, 500 files, 25 MB a file) and ours where upstream is silent:
 * 100 MiB unpacked in total, and no entry over 1 MiB may expand more than 200:1.
 */
export const BUNDLE_LIMITS: ZipLimits = {
  maxZipBytes: 50 * MIB,
  maxFiles: 500,
  maxFileBytes: 25 * MIB,
  maxTotalBytes: 100 * MIB,
  maxRatio: 200,
  ratioFloorBytes: MIB,
};

export interface SkillBundle {
  /** From SKILL.md's front matter; also the skill's directory name in a sandbox. */
  name: string;
  description: string;
  /** Relative to the skill's root; SKILL.md among them. */
  files: ZipFileEntry[];
  /** Sum of the files' sizes. */
  bytes: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const MAX_DESCRIPTION = 1024;

/** Why a skill name can't be one (it becomes a directory name), or null. */
export function skillNameProblem(name: string): string | null {
  if (!NAME.test(name) || name.endsWith('.'))
    return 'a skill name is 1-64 letters, digits, `.`, `_` or `-`, starting with a letter or digit';
  return null;
}

function unquote(value: string): string {
  const v = value.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
    try {
      return JSON.parse(v) as string;
    } catch {
      return v.slice(1, -1);
    }
  }
  if (v.length >= 2 && v.startsWith("'") && v.endsWith("'"))
    return v.slice(1, -1).replace(/''/g, "'");
  return v;
}

/**
 * The front matter of a SKILL.md: a `---` fenced block of `key: value` lines (YAML's plain,
 * quoted and `|`/`>` block scalars, which is what skill files use). Unknown keys are kept.
 */
export function parseFrontMatter(text: string): Record<string, string> {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  if (lines[0]?.trim() !== '---')
    throw new BundleError(
      'SKILL.md must start with front matter (a `---` line) giving name and description.',
    );
  const end = lines.findIndex((l, i) => i > 0 && l.trim() === '---');
  if (end < 0) throw new BundleError('SKILL.md front matter is not closed with a `---` line.');
  const out: Record<string, string> = {};
  for (let i = 1; i < end; i++) {
    const line = lines[i]!;
    const m = /^([A-Za-z_][\w-]*)\s*:\s*(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1]!;
    const raw = m[2]!.trim();
    if (raw === '|' || raw === '>' || raw === '|-' || raw === '>-') {
      const block: string[] = [];
      while (i + 1 < end && (/^\s+\S/.test(lines[i + 1]!) || lines[i + 1]!.trim() === '')) {
        block.push(lines[++i]!.trim());
      }
      out[key] = (raw.startsWith('|') ? block.join('\n') : block.join(' ')).trim();
    } else {
      out[key] = unquote(raw);
    }
  }
  return out;
}

/** Drops one directory every file shares (`my-skill/SKILL.md` → `SKILL.md`), as zips of a folder have. */
function stripCommonRoot(files: ZipFileEntry[]): ZipFileEntry[] {
  const first = files[0]?.path.split('/')[0];
  if (!first || !files.every((f) => f.path.startsWith(`${first}/`))) return files;
  return files.map((f) => ({ ...f, path: f.path.slice(first.length + 1) }));
}

/** Checks unpacked files as a skill: exactly one SKILL.md, at the root, with name and description. */
export function bundleFromFiles(input: ZipFileEntry[]): SkillBundle {
  if (input.length === 0) throw new BundleError('The skill bundle has no files.');
  if (input.length > BUNDLE_LIMITS.maxFiles)
    throw new BundleError(
      `The skill bundle has ${input.length} files; at most ${BUNDLE_LIMITS.maxFiles} are allowed.`,
    );
  const seen = new Set<string>();
  let bytes = 0;
  for (const f of input) {
    const problem = pathProblem(f.path);
    if (problem)
      throw new BundleError(`The file name ${JSON.stringify(f.path)} is refused: ${problem}.`);
    if (seen.has(f.path))
      throw new BundleError(`The file ${JSON.stringify(f.path)} is given more than once.`);
    seen.add(f.path);
    if (f.data.length > BUNDLE_LIMITS.maxFileBytes)
      throw new BundleError(
        `The file ${JSON.stringify(f.path)} has ${f.data.length} bytes; a file may have at most ${BUNDLE_LIMITS.maxFileBytes}.`,
      );
    bytes += f.data.length;
  }
  if (bytes > BUNDLE_LIMITS.maxTotalBytes)
    throw new BundleError(
      `The skill bundle has more than ${BUNDLE_LIMITS.maxTotalBytes} bytes in total.`,
    );
  const files = stripCommonRoot(input);
  const manifests = files.filter((f) => f.path.split('/').at(-1)!.toLowerCase() === 'skill.md');
  if (manifests.length === 0) throw new BundleError('The skill bundle has no SKILL.md.');
  if (manifests.length > 1)
    throw new BundleError(
      `The skill bundle must have exactly one SKILL.md; it has ${manifests.length} (${manifests.map((m) => m.path).join(', ')}).`,
    );
  const manifest = manifests[0]!;
  if (manifest.path !== 'SKILL.md')
    throw new BundleError(
      `SKILL.md must be at the top of the skill bundle, not at ${JSON.stringify(manifest.path)}.`,
    );
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(manifest.data);
  } catch {
    throw new BundleError('SKILL.md is not valid UTF-8.');
  }
  const front = parseFrontMatter(text);
  const name = front.name ?? '';
  const description = front.description ?? '';
  if (!name) throw new BundleError('SKILL.md front matter has no `name`.');
  const nameProblem = skillNameProblem(name);
  if (nameProblem)
    throw new BundleError(
      `SKILL.md front matter name ${JSON.stringify(name)} is refused: ${nameProblem}.`,
    );
  if (!description) throw new BundleError('SKILL.md front matter has no `description`.');
  if (description.length > MAX_DESCRIPTION)
    throw new BundleError(
      `SKILL.md front matter description is longer than ${MAX_DESCRIPTION} characters.`,
    );
  return { name, description, files, bytes };
}

/** `maxTotalBytes` may tighten the unpacked total (a caller's remaining budget); declared sizes are judged before any inflating. */
export async function bundleFromZip(
  zip: Buffer,
  options: { maxTotalBytes?: number } = {},
): Promise<SkillBundle> {
  const maxTotalBytes = Math.min(BUNDLE_LIMITS.maxTotalBytes, options.maxTotalBytes ?? Infinity);
  return bundleFromFiles(await readZip(zip, { ...BUNDLE_LIMITS, maxTotalBytes }));
}

const isZip = (name: string, data: Buffer) =>
  name.toLowerCase().endsWith('.zip') || (data.length >= 4 && data.readUInt32LE(0) === 0x04034b50);

/**
 * What a multipart create carries: one zip, or the files of a directory upload (their names are
 * paths, e.g. `my-skill/SKILL.md`). The total is bounded like a zip's.
 */
export async function bundleFromUpload(
  parts: { name: string; data: Buffer }[],
): Promise<SkillBundle> {
  const total = parts.reduce((n, p) => n + p.data.length, 0);
  if (total > BUNDLE_LIMITS.maxZipBytes)
    throw new BundleError(`The upload is larger than ${BUNDLE_LIMITS.maxZipBytes} bytes.`);
  if (parts.length === 1 && isZip(parts[0]!.name, parts[0]!.data))
    return bundleFromZip(parts[0]!.data);
  return bundleFromFiles(
    parts.map((p) => ({ path: p.name.replace(/^\.\//, ''), data: p.data, executable: false })),
  );
}

/** The zip Berth keeps and serves: the bundle's files under one `<name>/` directory. */
export const bundleToZip = (bundle: SkillBundle): Promise<Buffer> =>
  writeZip(bundle.name, bundle.files);
