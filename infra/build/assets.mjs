// The second half of `pnpm build` (after `tsc -b`): what tsc doesn't emit but the compiled service
// reads at run time, next to the JavaScript that reads it, so `new URL('./x', import.meta.url)`
// finds the same file from dist/ as from src/. Also writes the API's build-info.json.
import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const built = [
  'packages/contracts',
  'packages/skill-bundle',
  'packages/socket-buffer',
  'packages/core',
  'packages/blob-store-fs',
]
  .concat(['packages/db'])
  .concat(['packages/egress', 'packages/sandbox-docker', 'services/api'])
  .map((dir) => join(root, dir));

// Every non-TypeScript file under src/ (SQL migrations, the Python helpers), tests excepted.
const isAsset = (name) => extname(name) !== '.ts' && !name.endsWith('.test.ts');
let copied = 0;
for (const pkg of built) {
  for (const entry of readdirSync(join(pkg, 'src'), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !isAsset(entry.name)) continue;
    const from = join(entry.parentPath, entry.name);
    cpSync(from, join(pkg, 'dist', from.slice(join(pkg, 'src').length)));
    copied++;
  }
}

// The version is the API package's; the commit is BERTH_COMMIT (the image build passes it: its
// context has no .git) or git's, else "unknown".
const git = () => {
  try {
    const head = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5_000,
    });
    return head.toString().trim() || null;
  } catch {
    return null;
  }
};
const api = join(root, 'services/api');
const { version } = JSON.parse(readFileSync(join(api, 'package.json'), 'utf8'));
const commit = process.env.BERTH_COMMIT || git() || 'unknown';
writeFileSync(join(api, 'dist/build-info.json'), `${JSON.stringify({ version, commit })}\n`);
console.log(`build: ${copied} asset(s) copied; berth ${version} (${commit})`);
