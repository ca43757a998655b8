import Dockerode from 'dockerode';
import { provisionedSetting } from './postgres-image.js';

const docker = new Dockerode();

export interface ExecOutput {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a command in a sandbox the way an operator's `docker exec` would, as the image's user. */
export async function dockerExec(
  containerId: string,
  cmd: string[],
  user?: string,
): Promise<ExecOutput> {
  const container = docker.getContainer(`berth-${containerId}`);
  const exec = await container.exec({
    Cmd: cmd,
    AttachStdout: true,
    AttachStderr: true,
    ...(user ? { User: user } : {}),
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    docker.modem.demuxStream(
      stream,
      { write: (c: Buffer) => out.push(c) } as unknown as NodeJS.WritableStream,
      { write: (c: Buffer) => err.push(c) } as unknown as NodeJS.WritableStream,
    );
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  const { ExitCode } = await exec.inspect();
  return {
    exitCode: ExitCode ?? -1,
    stdout: Buffer.concat(out).toString(),
    stderr: Buffer.concat(err).toString(),
  };
}

/** Docker's view of a sandbox, or null when it does not exist. */
export async function inspectSandbox(
  containerId: string,
): Promise<Dockerode.ContainerInspectInfo | null> {
  try {
    return await docker.getContainer(`berth-${containerId}`).inspect();
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return null;
    throw error;
  }
}

/** Removes a sandbox behind Berth's back, as an operator might. */
export async function removeSandboxByHand(containerId: string): Promise<void> {
  await docker.getContainer(`berth-${containerId}`).remove({ force: true });
}

export function sandboxImage(): string {
  return provisionedSetting('BERTH_SANDBOX_IMAGE') ?? 'berth/sandbox:latest';
}
