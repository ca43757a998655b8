import Dockerode from 'dockerode';
import type { ManagedSandbox, SandboxRuntime, SandboxSpec, SandboxState } from '@berth/core';
import { statusOf, translateDockerError } from './docker-errors.js';
import { instanceFilter, LABELS, sandboxLabels, sandboxName } from './labels.js';

export interface SandboxLimits {
  /** Processes in one sandbox; a fork bomb stops here. */
  pidsLimit: number;
  /** CPU in billionths of a CPU (1e9 = one CPU). */
  nanoCpus: number;
  /** Open files per process. */
  nofile: number;
  /** Size of the /tmp tmpfs (counts against the memory limit). */
  tmpSizeBytes: number;
  /** Size of the /mnt/data tmpfs (counts against the memory limit). */
  dataSizeBytes: number;
}

export const defaultSandboxLimits: SandboxLimits = {
  pidsLimit: 512,
  nanoCpus: 1e9,
  nofile: 4096,
  tmpSizeBytes: 256 * 1024 ** 2,
  dataSizeBytes: 1024 ** 3,
};

export interface DockerSandboxRuntimeOptions extends SandboxLimits {
  /** Docker Engine socket; default /var/run/docker.sock. */
  socketPath?: string;
  image: string;
  /** Label value separating this deployment's sandboxes from any other on the daemon. */
  instance: string;
  /** uid:gid sandboxed code runs as; never root. */
  user?: string;
  /** OCI runtime (e.g. `runsc`); unset = the daemon's default. */
  runtime?: string;
  /** How allowlist sandboxes reach the egress proxy; without it, allowlist sandboxes are refused. */
  egress?: SandboxEgress;
}

/**
 * The sandbox side of egress: a host directory (holding the proxy's Unix socket) bind-mounted
 * read-only into the sandbox, proxy variables in its environment, and a forwarder started inside
 * as a uid the sandboxed code cannot signal. The sandbox still has no network interface but `lo`.
 */
export interface SandboxEgress {
  hostDir(containerId: string): string;
  containerDir: string;
  env: string[];
  forwarder: string[];
  /** uid:gid of the forwarder; not the sandbox user's. */
  forwarderUser: string;
  /** The port the forwarder listens on inside the sandbox (loopback). */
  port: number;
}

/** The sandbox runtime on Docker Engine; the hardening baseline of SANDBOX.md lives here. */
export class DockerSandboxRuntime implements SandboxRuntime {
  readonly #docker: Dockerode;
  readonly #user: string;

  constructor(private readonly options: DockerSandboxRuntimeOptions) {
    this.#docker = new Dockerode(options.socketPath ? { socketPath: options.socketPath } : {});
    this.#user = options.user ?? '1000:1000';
    if (/^(0|root)(:|$)/.test(this.#user)) throw new Error('sandboxes never run as root');
  }

  /** The Docker create body; exposed for tests and for operators to read. */
  containerSpec(spec: SandboxSpec): Dockerode.ContainerCreateOptions {
    const o = this.options;
    const egress = spec.network.type === 'allowlist' ? o.egress : undefined;
    if (spec.network.type === 'allowlist' && !egress) {
      // Never create an allowlist sandbox without its enforcement.
      throw new Error('allowlist sandboxes need the egress proxy, which is not configured');
    }
    const [uid = '1000', gid = uid] = this.#user.split(':');
    return {
      name: sandboxName(spec.containerId),
      Image: o.image,
      User: this.#user,
      WorkingDir: '/mnt/data',
      Hostname: 'sandbox',
      Labels: sandboxLabels(o.instance, spec.containerId, spec.projectId),
      Env: [
        'HOME=/home/sandbox',
        'LANG=C.UTF-8',
        'TMPDIR=/tmp',
        'MPLCONFIGDIR=/tmp/matplotlib',
        ...(egress?.env ?? []),
      ],
      HostConfig: {
        Memory: spec.memoryLimitBytes,
        MemorySwap: spec.memoryLimitBytes,
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges:true'],
        PidsLimit: o.pidsLimit,
        NanoCpus: o.nanoCpus,
        Ulimits: [{ Name: 'nofile', Soft: o.nofile, Hard: o.nofile }],
        Init: true,
        ReadonlyRootfs: true,
        Tmpfs: {
          '/tmp': `rw,exec,nosuid,nodev,size=${o.tmpSizeBytes}`,
          '/mnt/data': `rw,exec,nosuid,nodev,size=${o.dataSizeBytes},uid=${uid},gid=${gid},mode=0755`,
        },
        // Both policies: no interface but loopback. Allowlist egress goes through the mounted socket.
        NetworkMode: 'none',
        ...(egress
          ? {
              Mounts: [
                {
                  Type: 'bind' as const,
                  Source: egress.hostDir(spec.containerId),
                  Target: egress.containerDir,
                  ReadOnly: true,
                },
              ],
            }
          : {}),
        RestartPolicy: { Name: 'no' },
        Privileged: false,
        ...(o.runtime ? { Runtime: o.runtime } : {}),
      },
    };
  }

  async create(spec: SandboxSpec): Promise<void> {
    const body = this.containerSpec(spec);
    let created: Dockerode.Container | null = null;
    try {
      created = await this.#docker.createContainer(body);
      await created.start();
      if (spec.network.type === 'allowlist' && this.options.egress)
        await this.#startForwarder(created, this.options.egress);
    } catch (error) {
      if (created) await created.remove({ force: true, v: true }).catch(() => {});
      if (statusOf(error) === 409) {
        throw new Error(`a sandbox named ${body.name} already exists`, { cause: error });
      }
      throw translateDockerError(error);
    }
  }

  /** Starts the in-sandbox forwarder and waits until it accepts connections. */
  async #startForwarder(container: Dockerode.Container, egress: SandboxEgress): Promise<void> {
    const exec = await container.exec({
      Cmd: egress.forwarder,
      User: egress.forwarderUser,
      AttachStdout: false,
      AttachStderr: false,
    });
    await exec.start({ Detach: true });
    const probe = await container.exec({
      Cmd: [
        '/usr/bin/python3',
        '-I',
        '-c',
        `import socket,time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", ${egress.port}), 0.2).close(); raise SystemExit(0)
    except OSError: time.sleep(0.03)
raise SystemExit(1)`,
      ],
      User: this.#user,
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await probe.start({ hijack: true, stdin: false });
    stream.resume();
    await new Promise((resolve) => stream.once('end', resolve));
    const { ExitCode } = await probe.inspect();
    if (ExitCode !== 0) throw new Error('the egress forwarder did not start in the sandbox');
  }

  async remove(containerId: string): Promise<void> {
    const container = this.#docker.getContainer(sandboxName(containerId));
    for (let attempt = 0; ; attempt++) {
      try {
        await container.remove({ force: true, v: true });
        return;
      } catch (error) {
        const status = statusOf(error);
        if (status === 404) return;
        // 409: a removal is already in progress; wait for it to finish.
        if (status === 409 && attempt < 50) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        throw translateDockerError(error);
      }
    }
  }

  async inspect(containerId: string): Promise<SandboxState | null> {
    try {
      const info = await this.#docker.getContainer(sandboxName(containerId)).inspect();
      return {
        containerId,
        running: info.State.Running,
        oomKilled: info.State.OOMKilled,
        exitCode: info.State.Running ? null : info.State.ExitCode,
      };
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw translateDockerError(error);
    }
  }

  async listManaged(): Promise<ManagedSandbox[]> {
    try {
      const list = await this.#docker.listContainers({
        all: true,
        filters: instanceFilter(this.options.instance),
      });
      return list.flatMap((c) => {
        const containerId = c.Labels[LABELS.containerId];
        if (!containerId) return [];
        return [
          {
            containerId,
            projectId: c.Labels[LABELS.projectId] ?? '',
            createdAt: new Date(c.Created * 1000),
            running: c.State === 'running',
          },
        ];
      });
    } catch (error) {
      throw translateDockerError(error);
    }
  }

  async ping(): Promise<void> {
    try {
      await this.#docker.ping();
    } catch (error) {
      throw translateDockerError(error);
    }
  }
}
