import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../../', import.meta.url));

let v2: boolean | undefined;
/** `docker compose` (v2) when present, else Debian's `docker-compose` (v1), which provisioning installs. */
function composeCommand(): [string, string[]] {
  if (v2 === undefined) {
    try {
      execFileSync('docker', ['compose', 'version'], { stdio: 'ignore' });
      v2 = true;
    } catch {
      v2 = false;
    }
  }
  return v2 ? ['docker', ['compose']] : ['docker-compose', []];
}

/** Runs compose on the repository's docker-compose.yml and returns its stdout. */
export function compose(args: string[], env: Record<string, string>): string {
  const [command, prefix] = composeCommand();
  return execFileSync(command, [...prefix, '-f', 'docker-compose.yml', ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The same, without blocking the event loop; stderr joins the error's message on failure. */
export function composeAsync(
  args: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<string> {
  const [command, prefix] = composeCommand();
  return new Promise((resolve, reject) => {
    execFile(
      command,
      [...prefix, '-f', 'docker-compose.yml', ...args],
      {
        cwd: root,
        env: { ...process.env, ...env },
        timeout: timeoutMs,
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error)
          reject(new Error(`${command} ${args.join(' ')} failed: ${stderr}`, { cause: error }));
        else resolve(stdout);
      },
    );
  });
}
