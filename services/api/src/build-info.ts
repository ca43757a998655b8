import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface BuildInfo {
  version: string;
  commit: string;
}

const readJson = (relative: string): Record<string, unknown> | null => {
  try {
    return JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as Record<
      string,
      unknown
    >;
  } catch {
    return null;
  }
};

/** Run from source (no build-info.json next to this file): the checkout's own commit. */
const gitHead = (): string | null => {
  try {
    const out = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
      cwd: new URL('.', import.meta.url),
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 2_000,
    });
    return out.toString().trim() || null;
  } catch {
    return null;
  }
};

function load(): BuildInfo {
  // `pnpm build` writes dist/build-info.json (version and commit at build time); an image has no
  // .git, so that file is the only place its commit can come from.
  const built = readJson('./build-info.json');
  if (typeof built?.version === 'string' && typeof built.commit === 'string')
    return { version: built.version, commit: built.commit };
  // src/ and dist/ are both one level below the package, so ../package.json is the API's.
  const pkg = readJson('../package.json');
  return {
    version: typeof pkg?.version === 'string' ? pkg.version : '0.0.0',
    commit: gitHead() ?? 'unknown',
  };
}

/** The running build: reported by /healthz, the berth_build_info metric and x-berth-version. */
export const buildInfo: BuildInfo = load();
