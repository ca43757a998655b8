import type Dockerode from 'dockerode';
import {
  UnavailableError,
  type ManagedSandbox,
  type PoolNetwork,
  type SandboxPoolRuntime,
  type SandboxRuntime,
  type SandboxSpec,
  type SandboxState,
} from '@berth/core';
import type { DockerClient } from './docker-client.js';
import { egressDirMissing, isMissingBindSource, statusOf } from './docker-errors.js';
import { SANDBOX_FILES_CHANNEL_DIR, type FilesChannel } from './files-channel.js';
import { instanceFilter, LABELS, poolLabels, sandboxLabels, sandboxName } from './labels.js';
import { collect, startDetached } from './sandbox-exec.js';
import { sandboxUser } from './sandbox-user.js';

/** `managed-by` of the start-up probe containers (never sandboxes, so never listed as one). */
const PROBE = 'berth-probe';

export interface SandboxLimits {
  /** Processes in one sandbox; a fork bomb stops here. */
  pidsLimit: number;
  /** CPU in billionths of a CPU (1e9 = one CPU). */
  nanoCpus: number;
  /** Open files per process. */
  nofile: number;
  /** Largest /tmp (tmpfs, counts against the memory limit); scaled down for small limits. */
  tmpSizeBytes: number;
  /** Largest /mnt/data (tmpfs, counts against the memory limit); scaled down for small limits. */
  dataSizeBytes: number;
  /** Inodes (files and directories) /mnt/data may hold. */
  dataInodes: number;
  /** Inodes /tmp may hold. */
  tmpInodes: number;
}

export const defaultSandboxLimits: SandboxLimits = {
  pidsLimit: 512,
  nanoCpus: 1e9,
  nofile: 4096,
  tmpSizeBytes: 256 * 1024 ** 2,
  dataSizeBytes: 1024 ** 3,
  dataInodes: 65_536,
  tmpInodes: 16_384,
};

const MIB = 1024 ** 2;

/**
 * tmpfs pages are charged to the sandbox's memory cgroup, so the file systems must fit inside the
 * memory limit with room left for processes: /mnt/data gets at most half of it, /tmp an eighth,
 * /dev/shm a sixteenth (at most 64 MiB). At 1g that is 512 + 128 + 64 MiB, leaving 320 MiB, so a
 * full /mnt/data is ENOSPC (413), never an OOM kill.
 */
export function tmpfsSizes(
  memoryLimitBytes: number,
  limits: Pick<SandboxLimits, 'tmpSizeBytes' | 'dataSizeBytes'>,
): { data: number; tmp: number; shm: number } {
  const floorMib = (n: number) => Math.max(MIB, Math.floor(n / MIB) * MIB);
  return {
    data: floorMib(Math.min(limits.dataSizeBytes, memoryLimitBytes / 2)),
    tmp: floorMib(Math.min(limits.tmpSizeBytes, memoryLimitBytes / 8)),
    shm: floorMib(Math.min(64 * MIB, memoryLimitBytes / 16)),
  };
}

export interface DockerSandboxRuntimeOptions extends SandboxLimits {
  client: DockerClient;
  image: string;
  /** Label value separating this deployment's sandboxes from any other on the daemon. */
  instance: string;
  /** OCI runtime (e.g. `runsc`); unset = the daemon's default. */
  runtime?: string;
  /** How allowlist sandboxes reach the egress proxy; without it, allowlist sandboxes are refused. */
  egress?: SandboxEgress;
  /** Called once a sandbox is gone, so per-sandbox state elsewhere (the executor's) is dropped. */
  onRemoved?: (containerId: string) => void;
  /** The files channel's directory, mounted read-only into every sandbox (docs/files.md). */
  filesChannel?: Pick<FilesChannel, 'hostDir' | 'ensureDir'>;
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
  /** More environment for a sandbox with domain secrets: trust in its proxy's CA. */
  caEnv: string[];
  forwarder: string[];
  /** uid:gid of the forwarder; not the sandbox user's. */
  forwarderUser: string;
  /** The port the forwarder listens on inside the sandbox (loopback). */
  port: number;
}

function readOnly(source: string, target: string): Dockerode.MountSettings {
  return { Type: 'bind', Source: source, Target: target, ReadOnly: true };
}

/** Why the host can't be trusted to run sandboxes; thrown at start-up. */
export class UnsafeHostError extends Error {
  override name = 'UnsafeHostError';
}

/** Engines already verified by this process (the probe starts containers: do it once). */
const verified = new Map<string, Promise<void>>();

/** The sandbox runtime on Docker Engine; the hardening baseline of SANDBOX.md lives here. */
export class DockerSandboxRuntime implements SandboxRuntime, SandboxPoolRuntime {
  readonly #client: DockerClient;

  constructor(private readonly options: DockerSandboxRuntimeOptions) {
    this.#client = options.client;
  }

  /** verifyHost, once per engine, image and runtime; a failure that isn't a verdict is retried. */
  #ensureVerified(): Promise<void> {
    const key = `${this.#client.key}|${this.options.image}|${this.options.runtime ?? ''}`;
    let check = verified.get(key);
    if (!check) {
      check = this.#verify();
      verified.set(key, check);
      check.catch((error: unknown) => {
        if (!(error instanceof UnsafeHostError)) verified.delete(key);
      });
    }
    return check;
  }

  /** The Docker create body; exposed for tests and for operators to read. */
  containerSpec(spec: SandboxSpec): Dockerode.ContainerCreateOptions {
    const o = this.options;
    const egress = spec.network.type === 'allowlist' ? o.egress : undefined;
    if (spec.network.type === 'allowlist' && !egress) {
      // Never create an allowlist sandbox without its enforcement.
      throw new Error('allowlist sandboxes need the egress proxy, which is not configured');
    }
    // Each sandbox has a uid of its own: per-uid kernel limits (inotify, user watches, nproc) are
    // never shared between tenants.
    const user = sandboxUser(spec.uid);
    const size = tmpfsSizes(spec.memoryLimitBytes, o);
    // A secret exists in the sandbox only as its placeholder; the proxy swaps in the value.
    const secrets = spec.network.type === 'allowlist' ? (spec.network.domainSecrets ?? []) : [];
    const secretEnv =
      egress && secrets.length > 0
        ? [...egress.caEnv, ...secrets.map((s) => `${s.name}=${s.placeholder}`)]
        : [];
    // Read-only: the egress proxy's socket directory, and the files channel's.
    const mounts: Dockerode.MountSettings[] = [
      ...(egress ? [readOnly(egress.hostDir(spec.containerId), egress.containerDir)] : []),
      ...(o.filesChannel ? [readOnly(o.filesChannel.hostDir, SANDBOX_FILES_CHANNEL_DIR)] : []),
    ];
    return {
      name: sandboxName(spec.containerId),
      Image: o.image,
      User: user,
      WorkingDir: '/mnt/data',
      Hostname: 'sandbox',
      Labels: sandboxLabels(o.instance, spec.containerId, spec.projectId),
      Env: [
        'HOME=/home/sandbox',
        'LANG=C.UTF-8',
        'TMPDIR=/tmp',
        'MPLCONFIGDIR=/tmp/matplotlib',
        ...(egress?.env ?? []),
        ...secretEnv,
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
          '/tmp': `rw,exec,nosuid,nodev,size=${size.tmp},nr_inodes=${o.tmpInodes}`,
          '/mnt/data': `rw,exec,nosuid,nodev,size=${size.data},nr_inodes=${o.dataInodes},uid=${spec.uid},gid=${spec.uid},mode=0755`,
          // Skills: owned by root and filled as root at create, so sandbox code reads, never writes.
          ...(spec.skills
            ? {
                '/mnt/skills': `rw,exec,nosuid,nodev,size=${spec.skills.bytes},nr_inodes=${spec.skills.inodes},uid=0,gid=0,mode=0755`,
              }
            : {}),
        },
        ShmSize: size.shm,
        // Output that bypasses an exec (e.g. written to /proc/1/fd/1) is discarded: no sandbox
        // can grow a file on the host.
        LogConfig: { Type: 'none', Config: {} },
        // Both policies: no interface but loopback. Allowlist egress goes through the mounted socket.
        NetworkMode: 'none',
        ...(mounts.length ? { Mounts: mounts } : {}),
        RestartPolicy: { Name: 'no' },
        Privileged: false,
        ...(o.runtime ? { Runtime: o.runtime } : {}),
      },
    };
  }

  async create(spec: SandboxSpec): Promise<void> {
    await this.#createAndStart(this.containerSpec(spec), spec);
  }

  /**
   * A warm-pool sandbox: the very body of a cold sandbox of its network (same hardening, limits,
   * its own uid; for `allowlist` the proxy settings, the slot's egress directory mounted and the
   * forwarder started and probed), named after its slot and labelled as a pool member instead of
   * a container. No domain secrets: their environment is a container's, fixed at create.
   */
  async createPooled(spec: {
    slotId: string;
    uid: number;
    memoryLimitBytes: number;
    network: PoolNetwork;
  }): Promise<void> {
    const sandbox: SandboxSpec = {
      containerId: spec.slotId,
      projectId: '',
      uid: spec.uid,
      memoryLimitBytes: spec.memoryLimitBytes,
      network:
        spec.network === 'allowlist'
          ? { type: 'allowlist', allowedDomains: [] }
          : { type: 'disabled' },
    };
    const body = this.containerSpec(sandbox);
    await this.#createAndStart(
      { ...body, Labels: poolLabels(this.options.instance, spec.slotId) },
      sandbox,
    );
  }

  async runsPooled(slotId: string): Promise<boolean> {
    return (await this.inspect(slotId))?.running ?? false;
  }

  removePooled(slotId: string): Promise<void> {
    return this.remove(slotId);
  }

  async #createAndStart(body: Dockerode.ContainerCreateOptions, spec: SandboxSpec): Promise<void> {
    const egress = spec.network.type === 'allowlist' ? this.options.egress : undefined;
    const client = this.#client;
    try {
      await this.#ensureVerified();
    } catch (error) {
      if (error instanceof UnsafeHostError)
        // The host is unsafe until an operator fixes it: a retry in seconds can't succeed.
        throw new UnavailableError(`This server refuses to run sandboxes: ${error.message}`, {
          cause: error,
          retryAfter: undefined,
          shouldRetry: false,
        });
      throw await client.translate(error, spec.containerId);
    }
    let created: Dockerode.Container | null = null;
    try {
      await this.options.filesChannel?.ensureDir();
      created = await client.call('create', (abortSignal) =>
        client.docker.createContainer({ ...body, abortSignal } as Dockerode.ContainerCreateOptions),
      );
      const container = created;
      await client.call('start', (abortSignal) => container.start({ abortSignal }));
      if (egress) await this.#startForwarder(spec, egress);
    } catch (error) {
      if (created) await this.remove(spec.containerId).catch(() => {});
      if (statusOf(error) === 409) {
        throw new Error(`a sandbox named ${body.name} already exists`, { cause: error });
      }
      if ((egress || this.options.filesChannel) && isMissingBindSource(error))
        throw egressDirMissing(error);
      throw await client.translate(error, spec.containerId);
    }
  }

  /** Starts the in-sandbox forwarder and waits until it accepts connections. */
  async #startForwarder(spec: SandboxSpec, egress: SandboxEgress): Promise<void> {
    const client = this.#client;
    await startDetached(client, {
      containerId: spec.containerId,
      user: egress.forwarderUser,
      argv: egress.forwarder,
    });
    const probe = await collect(client, {
      containerId: spec.containerId,
      user: sandboxUser(spec.uid),
      argv: [
        '/usr/bin/python3',
        '-I',
        '-S',
        '-c',
        `import socket,time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", ${egress.port}), 0.2).close(); raise SystemExit(0)
    except OSError: time.sleep(0.03)
raise SystemExit(1)`,
        'berth:forwarder-probe',
      ],
      tag: 'berth:forwarder-probe',
      deadlineMs: 10_000,
    });
    if (probe.end.how !== 'exited' || probe.end.exitCode !== 0)
      throw new Error('the egress forwarder did not start in the sandbox');
  }

  async remove(containerId: string): Promise<void> {
    const client = this.#client;
    const container = client.container(sandboxName(containerId));
    for (let attempt = 0; ; attempt++) {
      try {
        await client.call('remove', (abortSignal) =>
          container.remove({ force: true, v: true, abortSignal }),
        );
        this.options.onRemoved?.(containerId);
        return;
      } catch (error) {
        const status = statusOf(error);
        if (status === 404) {
          this.options.onRemoved?.(containerId);
          return;
        }
        // 409: a removal is already in progress; wait for it to finish.
        if (status === 409 && attempt < 50) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        throw await client.translate(error, containerId);
      }
    }
  }

  async inspect(containerId: string): Promise<SandboxState | null> {
    const client = this.#client;
    try {
      const info = await client.call('inspect', (abortSignal) =>
        client.container(sandboxName(containerId)).inspect({ abortSignal }),
      );
      return {
        containerId,
        running: info.State.Running,
        oomKilled: info.State.OOMKilled,
        exitCode: info.State.Running ? null : info.State.ExitCode,
      };
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw await client.translate(error, containerId);
    }
  }

  async listManaged(): Promise<ManagedSandbox[]> {
    const client = this.#client;
    try {
      const list = await client.call('list', (abortSignal) =>
        client.docker.listContainers({
          all: true,
          filters: instanceFilter(this.options.instance),
          abortSignal,
        }),
      );
      return list.flatMap((c) => {
        // A pool sandbox goes by its slot, claimed or not (Postgres binds it to a container).
        const poolSlot = c.Labels[LABELS.poolSlot];
        const containerId = poolSlot ?? c.Labels[LABELS.containerId];
        if (!containerId) return [];
        return [
          {
            containerId,
            projectId: c.Labels[LABELS.projectId] ?? '',
            createdAt: new Date(c.Created * 1000),
            running: c.State === 'running',
            ...(poolSlot ? { poolSlot } : {}),
          },
        ];
      });
    } catch (error) {
      throw await client.translate(error, 'list');
    }
  }

  async ping(): Promise<void> {
    const client = this.#client;
    try {
      await client.call('ping', (abortSignal) => client.engine.ping({ abortSignal }), 2_000);
    } catch (error) {
      throw await client.translate(error, 'ping');
    }
  }

  /**
   * Refuses an engine that can't be trusted with hostile code: seccomp must be on, and the OCI
   * runtime must not be vulnerable to CVE-2024-21626 (a working directory of /proc/self/fd/N
   * reaching a leaked host directory). The second is probed, not guessed from a version string:
   * distributions patch runc without changing its version (Debian's 1.1.5+ds1-1+deb12u1 is fixed).
   */
  async verifyHost(): Promise<void> {
    await this.#removeLeftProbes();
    return this.#ensureVerified();
  }

  /**
   * Removes the probes an earlier process of this instance left (one stopped while it probed, or
   * whose probe removal failed): probes carry the instance label for this. Best effort: an engine
   * that can't list fails the verification itself.
   */
  async #removeLeftProbes(): Promise<void> {
    const client = this.#client;
    const left = await client
      .call('list', (abortSignal) =>
        client.docker.listContainers({
          all: true,
          filters: {
            label: [`${LABELS.managedBy}=${PROBE}`, `${LABELS.instance}=${this.options.instance}`],
          },
          abortSignal,
        }),
      )
      .catch(() => []);
    await Promise.all(left.map((c) => this.#removeProbe(client.container(c.Id))));
  }

  /** Removes a probe container, trying twice; never throws. */
  async #removeProbe(container: Dockerode.Container): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await this.#client.call('remove', (abortSignal) =>
          container.remove({ force: true, abortSignal }),
        );
        return;
      } catch (error) {
        if (statusOf(error) === 404) return;
      }
    }
  }

  async #verify(): Promise<void> {
    const client = this.#client;
    const info = await client.call('info', (abortSignal) => client.engine.info({ abortSignal }));
    const security = info.SecurityOptions ?? [];
    if (
      !security.some((o) => o.startsWith('name=seccomp')) ||
      security.includes('name=seccomp,profile=unconfined')
    )
      throw new UnsafeHostError(
        'Docker runs without seccomp (docker info shows no name=seccomp security option): Berth refuses to run sandboxes on it. Enable seccomp in the engine.',
      );
    const escaped = await Promise.all(
      [3, 4, 5, 6, 7, 8, 9].map((fd) => this.#startsWithWorkdir(`/proc/self/fd/${fd}`)),
    );
    if (escaped.some(Boolean))
      throw new UnsafeHostError(
        `The OCI runtime${this.options.runtime ? ` '${this.options.runtime}'` : ''} is vulnerable to CVE-2024-21626 (a container started with its working directory on a leaked host file descriptor). Upgrade runc to 1.1.12 or later (or your distribution's patched build).`,
      );
  }

  /** Whether a container whose WorkingDir is `workdir` starts at all (it must not). */
  async #startsWithWorkdir(workdir: string): Promise<boolean> {
    const client = this.#client;
    const name = `berth-probe-${this.options.instance}-${Math.random().toString(16).slice(2, 10)}`;
    const container = await client.call('create', (abortSignal) =>
      client.docker.createContainer({
        name,
        Image: this.options.image,
        Cmd: ['/bin/true'],
        User: '65534:65534',
        WorkingDir: workdir,
        Labels: { [LABELS.managedBy]: PROBE, [LABELS.instance]: this.options.instance },
        HostConfig: {
          NetworkMode: 'none',
          CapDrop: ['ALL'],
          SecurityOpt: ['no-new-privileges:true'],
          LogConfig: { Type: 'none', Config: {} },
          ...(this.options.runtime ? { Runtime: this.options.runtime } : {}),
        },
        abortSignal,
      } as Dockerode.ContainerCreateOptions),
    );
    try {
      await client.call('start', (abortSignal) => container.start({ abortSignal }));
      return true;
    } catch (error) {
      if (error instanceof Error && error.name === 'DockerDeadlineError') throw error;
      return false;
    } finally {
      await this.#removeProbe(container);
    }
  }
}
