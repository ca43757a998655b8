import type Dockerode from 'dockerode';
import {
  DockerClient,
  DockerSandboxRuntime,
  collect,
  defaultSandboxLimits,
  sandboxName,
  type DockerSandboxRuntimeOptions,
} from '@berth/sandbox-docker';
import { provisionedSetting } from './postgres-image.js';

/** The tests' one Docker client, with the service's deadlines. */
export const testDocker = new DockerClient({ callTimeoutMs: 30_000 });
const docker = testDocker.docker;

export interface ExecOutput {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command in a sandbox the way an operator's `docker exec` would, as the image's user
 * (or `user`), through the service's own exec helper.
 */
export async function dockerExec(
  containerId: string,
  cmd: string[],
  user?: string,
): Promise<ExecOutput> {
  const run = await collect(
    testDocker,
    { containerId, user: user ?? '', argv: cmd, tag: 'berth:testkit', deadlineMs: 120_000 },
    64 * 1024 * 1024,
  );
  return {
    exitCode: run.end.exitCode ?? -1,
    stdout: run.stdout.toString(),
    stderr: run.stderr.toString(),
  };
}

/** Docker's view of a sandbox, or null when it does not exist. */
export async function inspectSandbox(
  containerId: string,
): Promise<Dockerode.ContainerInspectInfo | null> {
  try {
    return await docker.getContainer(sandboxName(containerId)).inspect();
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return null;
    throw error;
  }
}

/** Removes a sandbox behind Berth's back, as an operator might. */
export async function removeSandboxByHand(containerId: string): Promise<void> {
  await docker.getContainer(sandboxName(containerId)).remove({ force: true });
}

/**
 * Removes the engine probes (`berth-probe-<instance>-…`) an instance left: a Berth closed while
 * its start-up probe ran can leave them behind. (The next start of that instance would remove
 * them; a test instance never starts again.)
 */
export async function removeProbes(instance: string): Promise<void> {
  const probes = await docker.listContainers({
    all: true,
    filters: { name: [`berth-probe-${instance}-`] },
  });
  await Promise.all(
    probes.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {}),
    ),
  );
}

export function sandboxImage(): string {
  return provisionedSetting('BERTH_SANDBOX_IMAGE') ?? 'berth/sandbox:latest';
}

/**
 * A sandbox runtime with the service's limits on the test image, under the label `instance`:
 * it sees (and lists) only that instance's sandboxes. `options` adds or overrides settings.
 */
export function labelledRuntime(
  instance: string,
  options: Partial<DockerSandboxRuntimeOptions> = {},
): DockerSandboxRuntime {
  return new DockerSandboxRuntime({
    ...defaultSandboxLimits,
    client: new DockerClient(),
    image: sandboxImage(),
    instance,
    ...options,
  });
}
