import { z } from 'zod';
import { AesGcmSecretBox } from '@berth/core';
import { parseCidrs, parseUpstreamProxy } from '@berth/egress';
import { parsePoolSizes } from './pool-sizes.js';

/** A comma-separated setting as a list, blanks dropped. */
export const splitList = (value: string): string[] =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** A refinement that runs `parse` on the value and reports what it throws as the issue. */
const parsedBy =
  (parse: (value: string) => unknown, prefix = '') =>
  (value: string | undefined, ctx: z.RefinementCtx): void => {
    if (value === undefined) return;
    try {
      parse(value);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `${prefix}${(error as Error).message}` });
    }
  };

const int = (fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

/**
 * Every setting of the service, parsed once at start. Adapters never read process.env; they get
 * their slice of this object. The README's configuration table mirrors it.
 */
export const ConfigSchema = z
  .object({
    /** `production` refuses test-only switches. */
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    /**
     * `1` allows the TEST ONLY switches below (BERTH_EGRESS_TEST_*). Never set it in a
     * deployment: without it those switches are refused, whatever NODE_ENV says.
     */
    BERTH_TEST_MODE: z.enum(['0', '1']).default('0'),
    /** Address and port the HTTP server binds. 0 picks a free port. */
    HOST: z.string().default('127.0.0.1'),
    PORT: int(8080, 0, 65535),
    /** Postgres. Unset: the start command runs a labelled local Postgres container and uses it. */
    DATABASE_URL: z.string().url().optional(),
    /** Pool size per process. */
    DATABASE_POOL_MAX: int(20, 1, 500),
    /** Image for the local Postgres started when DATABASE_URL is unset. */
    BERTH_POSTGRES_IMAGE: z.string().default('postgres:15-bookworm'),
    /** Name of that container; its data lives in the volume `<name>-data`. */
    BERTH_DEV_POSTGRES_NAME: z.string().default('berth-dev-postgres'),
    /** A key accepted without a database row, for the quick start (≥ 20 characters). */
    BERTH_BOOTSTRAP_API_KEY: z
      .string()
      .min(20, 'BERTH_BOOTSTRAP_API_KEY must be at least 20 characters')
      .optional(),
    /** The project the bootstrap key belongs to (created if missing). */
    BERTH_BOOTSTRAP_PROJECT: z.string().min(1).default('default'),
    /** Docker Engine socket. */
    BERTH_DOCKER_SOCKET: z.string().default('/var/run/docker.sock'),
    /**
     * Deadline of one Docker call (create, start, inspect, exec, remove, list). Past it the request
     * answers 504 (503 if the engine itself is down) and a wedged sandbox is marked failed.
     */
    BERTH_DOCKER_TIMEOUT_MS: int(10_000, 100, 600_000),
    /** Label value that separates this deployment's sandboxes from any other on the daemon. */
    BERTH_INSTANCE: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/)
      .default('default'),
    /** The image every sandbox runs. */
    BERTH_SANDBOX_IMAGE: z.string().default('berth/sandbox:latest'),
    /** OCI runtime for sandboxes (e.g. `runsc` for gVisor); unset = the daemon's default. */
    BERTH_SANDBOX_RUNTIME: z.string().optional(),
    /** Processes per sandbox: a fork bomb stops here. */
    BERTH_SANDBOX_PIDS_LIMIT: int(512, 16, 65536),
    /** CPUs per sandbox (fractions allowed). */
    BERTH_SANDBOX_CPUS: z.coerce.number().positive().max(256).default(1),
    /** Open files per process in a sandbox. */
    BERTH_SANDBOX_NOFILE: int(4096, 64, 1_048_576),
    /** Size of /tmp (tmpfs, counts against the memory limit). */
    BERTH_SANDBOX_TMP_MB: int(256, 16, 65536),
    /**
     * Size cap of /mnt/data (tmpfs, counts against the memory limit). A sandbox gets at most half
     * its memory limit for /mnt/data and an eighth for /tmp, so a full disk is 413, never an OOM.
     */
    BERTH_SANDBOX_DATA_MB: int(1024, 16, 1_048_576),
    /** Files and directories /mnt/data may hold. */
    BERTH_SANDBOX_DATA_INODES: int(65_536, 1024, 16_777_216),
    /** Files and directories /tmp may hold. */
    BERTH_SANDBOX_TMP_INODES: int(16_384, 1024, 16_777_216),
    /** Largest `expires_after.minutes` accepted (upstream: 20). */
    BERTH_MAX_EXPIRY_MINUTES: int(1440, 1, 525_600),
    /** Live containers one project may hold; past it, create answers 429. */
    BERTH_MAX_CONTAINERS_PER_PROJECT: int(50, 1, 100_000),
    /** Largest JSON request body. */
    BERTH_MAX_JSON_BYTES: int(1_048_576, 1024, 64 * 1_048_576),
    /** How long a `creating` row may be in flight before reconcile treats it as abandoned. */
    BERTH_CREATING_GRACE_SECONDS: int(300, 10, 86_400),
    /**
     * What this process runs: `all` (HTTP API plus reaper and reconciler, the default), `api`
     * (HTTP only; run a `reaper` process beside it), or `reaper` (reaper and reconciler only).
     */
    BERTH_ROLE: z.enum(['all', 'api', 'reaper']).default('all'),
    /** Cron expression (node-cron, seconds field allowed) of the reaper's ticks. */
    BERTH_REAPER_CRON: z.string().default('*/5 * * * * *'),
    /** Sandbox removals the reaper runs at once. */
    BERTH_REAPER_CONCURRENCY: int(4, 1, 64),
    /** Most containers one reaper tick expires. */
    BERTH_REAPER_MAX_PER_TICK: int(200, 1, 100_000),
    /** How long expired and failed containers stay queryable before their rows are purged. */
    BERTH_EXPIRED_RETENTION_HOURS: z.coerce
      .number()
      .min(0)
      .max(24 * 365)
      .default(24),
    /**
     * `1`: when a container expires its /mnt/data is archived to the blob store and stays
     * listable and downloadable, read-only, for BERTH_EXPIRED_RETENTION_HOURS (docs/files.md).
     * `0`: upstream's behaviour, files are gone at expiry.
     */
    BERTH_ARCHIVE_ON_EXPIRY: z.enum(['0', '1']).default('1'),
    /** Bytes of files one container's archive may keep; files past it are listed as `over_cap`. */
    BERTH_ARCHIVE_MAX_MB: int(512, 1, 1_048_576),
    /** How long archiving one container may take before the rest of its files are given up. */
    BERTH_ARCHIVE_TIMEOUT_MS: int(300_000, 1_000, 86_400_000),
    /** Cron expression (node-cron, seconds field allowed) for reconciliation. */
    BERTH_RECONCILE_CRON: z.string().default('*/60 * * * * *'),
    /** Default `timeout_ms` of an exec. */
    BERTH_EXEC_TIMEOUT_MS: int(60_000, 1, 86_400_000),
    /** Largest `timeout_ms` a client may ask for. */
    BERTH_EXEC_MAX_TIMEOUT_MS: int(600_000, 1, 86_400_000),
    /** Output kept per stream (stdout, stderr) of one exec; the rest is dropped. */
    BERTH_EXEC_MAX_OUTPUT_BYTES: int(1_048_576, 1024, 64 * 1_048_576),
    /** Execs running at once in one sandbox (per replica); past it, 429. */
    BERTH_EXEC_MAX_CONCURRENT: int(8, 1, 256),
    /** Execs running at once in this process, across sandboxes; past it, 429. */
    BERTH_EXEC_MAX_CONCURRENT_TOTAL: int(256, 1, 65_536),
    /** How long past `timeout_ms` an exec may take to confirm its kill before it answers anyway. */
    BERTH_EXEC_GRACE_MS: int(2_000, 100, 60_000),
    /**
     * `1`: a sandbox that runs commands again and again keeps a standby supervisor, and its execs
     * are handed to it instead of costing a Docker exec each (docs/exec.md); `0`: every exec is a
     * Docker exec.
     */
    BERTH_EXEC_STANDBY: z.enum(['0', '1']).default('1'),
    /** Python sessions one container may hold (docs/sessions.md); past it, 429. */
    BERTH_SESSIONS_MAX_PER_CONTAINER: int(4, 1, 64),
    /**
     * At a session run's timeout the code gets a KeyboardInterrupt; if it has not stopped this
     * long after, the interpreter is killed and a fresh one started.
     */
    BERTH_SESSION_INTERRUPT_GRACE_MS: int(2_000, 100, 60_000),
    /** Deadline of a file listing, a removal, and the start of a download in a sandbox. */
    BERTH_FILES_HELPER_TIMEOUT_MS: int(30_000, 100, 600_000),
    /** A file transfer with no bytes moving for this long is ended (504). */
    BERTH_TRANSFER_IDLE_TIMEOUT_MS: int(30_000, 100, 600_000),
    /**
     * Kernel send buffer asked for each socket that carries a sandbox's bulk bytes from this
     * process (egress answers, uploads over the files channel), in bytes; 0 keeps the kernel's
     * default (`net.core.wmem_default`). Past `net.core.wmem_max` only for a root service.
     */
    BERTH_SOCKET_SEND_BUFFER: int(2 * 1_048_576, 0, 64 * 1_048_576),
    /** Uploads and downloads in flight in this process; past it, 429. */
    BERTH_MAX_INFLIGHT_TRANSFERS: int(64, 1, 65_536),
    /** Exec request bodies being read or held at once, in MiB, across requests; past it, 429. */
    BERTH_EXEC_MAX_INFLIGHT_BODY_MB: int(256, 1, 65_536),
    /** Largest `stdin` of one exec. */
    BERTH_EXEC_MAX_STDIN_BYTES: int(10 * 1_048_576, 0, 256 * 1_048_576),
    /** Where the service keeps its own data (Files API blobs under `files/`). */
    BERTH_DATA_DIR: z.string().default('.berth/data'),
    /** Largest file one upload may carry (Files API and container files); past it, 413. */
    BERTH_MAX_UPLOAD_BYTES: int(512 * 1_048_576, 1, 1_099_511_627_776),
    /**
     * Host directory of the egress proxy's per-sandbox sockets (bind-mounted into allowlist
     * sandboxes) and of the files channel's (`files-channel/`, bind-mounted into every sandbox).
     */
    BERTH_EGRESS_DIR: z.string().default('.berth/egress'),
    /**
     * `1`: uploads' and downloads' bytes go over a Unix socket per transfer (docs/files.md), `0`:
     * over the exec's stdio, as for sandboxes created without the channel.
     */
    BERTH_FILES_CHANNEL: z.enum(['0', '1']).default('1'),
    /** Most entries in one `allowed_domains`. */
    BERTH_EGRESS_MAX_DOMAINS: int(64, 1, 4096),
    /**
     * Addresses the egress proxy never connects to, beyond the non-public ranges it always refuses
     * and this host's own interfaces: comma-separated IPs or CIDRs. Under compose the API container
     * can't see the host's LAN addresses; list them here (e.g. `192.0.2.10,2001:db8::10`).
     */
    BERTH_EGRESS_DENY_CIDRS: z
      .string()
      .default('')
      .superRefine(parsedBy((value) => parseCidrs(splitList(value)))),
    /**
     * Non-public addresses that allowlisted names may resolve to (an internal package mirror,
     * split-horizon DNS): comma-separated IPs or CIDRs. Everything else stays refused; loopback,
     * this host's own addresses and metadata endpoints only when an entry names the address itself
     * (`127.0.0.2`, not `127.0.0.0/8`). BERTH_EGRESS_DENY_CIDRS wins over this.
     */
    BERTH_EGRESS_TRUSTED_CIDRS: z
      .string()
      .default('')
      .superRefine(parsedBy((value) => parseCidrs(splitList(value)))),
    /**
     * Key sealing `domain_secrets` at rest (AES-256-GCM): 32 bytes as 64 hex digits or base64
     * (`openssl rand -base64 32`). Unset: `domain_secrets` answer 400. Changing it makes the secrets
     * of running containers unreadable: their domains are then refused, never sent without them.
     */
    BERTH_SECRETS_KEY: z
      .string()
      .optional()
      .superRefine(parsedBy((value) => AesGcmSecretBox.parseKey(value), 'BERTH_SECRETS_KEY ')),
    /**
     * A corporate HTTP proxy (`http://[user:pass@]host:port`, supporting CONNECT) that all allowlist
     * egress goes through. Berth still enforces each sandbox's allowlist; names are then resolved,
     * and internal addresses refused, by that proxy, not by Berth's address guard.
     */
    BERTH_EGRESS_UPSTREAM_PROXY: z
      .string()
      .optional()
      .superRefine(parsedBy(parseUpstreamProxy, 'BERTH_EGRESS_UPSTREAM_PROXY ')),
    /** Connections one sandbox may hold open through the egress proxy at once. */
    BERTH_EGRESS_MAX_CONNECTIONS_PER_SANDBOX: int(64, 1, 65_536),
    /** Connections the egress proxy holds at once, across sandboxes. */
    BERTH_EGRESS_MAX_CONNECTIONS: int(4096, 1, 1_048_576),
    /** A tunnel with no bytes either way for this long is closed. */
    BERTH_EGRESS_IDLE_TIMEOUT_MS: int(60_000, 100, 3_600_000),
    /**
     * TEST ONLY (needs BERTH_TEST_MODE=1, refused in production): `host:port=ip:port` pairs, comma-separated, sending an
     * allowed name straight to a local upstream (no DNS, no address guard).
     */
    BERTH_EGRESS_TEST_UPSTREAMS: z.string().optional(),
    /**
     * TEST ONLY (needs BERTH_TEST_MODE=1, refused in production): a PEM file of one more CA that
     * intercepted upstreams may present (a test's own TLS server), besides the system roots.
     */
    BERTH_EGRESS_TEST_UPSTREAM_CA: z.string().optional(),
    /**
     * TEST ONLY (needs BERTH_TEST_MODE=1, refused in production): `host=ip` pairs, comma-separated, answering name lookups
     * (the address guard still applies: this is how tests show private answers are refused).
     */
    BERTH_EGRESS_TEST_HOSTS: z.string().optional(),
    /**
     * Bearer token a Prometheus scraper sends to `GET /metrics` (≥ 20 characters). Unset: no
     * metrics route at all.
     */
    BERTH_METRICS_TOKEN: z
      .string()
      .min(20, 'BERTH_METRICS_TOKEN must be at least 20 characters')
      .optional(),
    /**
     * `off` stops counting metrics and writing lifecycle events (the admin API and /metrics still
     * answer, with nothing new in them): only for measuring their overhead.
     */
    BERTH_OPERATOR_METRICS: z.enum(['on', 'off']).default('on'),
    /** How long lifecycle events (`/v1/admin/events`) are kept; the reaper tick purges older ones. */
    BERTH_EVENT_RETENTION_HOURS: z.coerce
      .number()
      .min(1)
      .max(24 * 365)
      .default(24 * 7),
    /** How long one `/v1/admin/containers` page waits for live usage before answering without it. */
    BERTH_ADMIN_USAGE_DEADLINE_MS: int(500, 10, 10_000),
    /** The host's cgroup mount, where live sandbox usage is read (read-only). */
    BERTH_CGROUP_ROOT: z.string().default('/sys/fs/cgroup'),
    /**
     * Warm pool: idle, hardened sandboxes kept per memory limit and network policy,
     * `1g=2,1g/allowlist=1,4g=1` (`LIMIT` alone means `LIMIT/disabled`); a create of that limit and
     * policy claims one instead of starting a sandbox (an allowlist one without domain_secrets;
     * its proxy attaches at claim). `0` disables the pool.
     */
    BERTH_POOL_SIZES: z
      .string()
      .default('1g=2,1g/allowlist=1')
      .superRefine(parsedBy(parsePoolSizes)),
    /** Pause between two warm-pool creates (the filler's rate bound). */
    BERTH_POOL_FILL_INTERVAL_MS: int(200, 0, 600_000),
    /** pino level. */
    BERTH_LOG_LEVEL: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info'),
    /** How long SIGTERM waits for in-flight requests before closing anyway. */
    BERTH_SHUTDOWN_TIMEOUT_MS: int(15_000, 0, 600_000),
  })
  .superRefine((c, ctx) => {
    for (const key of [
      'BERTH_EGRESS_TEST_UPSTREAMS',
      'BERTH_EGRESS_TEST_HOSTS',
      'BERTH_EGRESS_TEST_UPSTREAM_CA',
    ] as const) {
      if (c[key] && (c.BERTH_TEST_MODE !== '1' || c.NODE_ENV === 'production')) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `${key} is a test-only switch: it needs BERTH_TEST_MODE=1 and is refused in production`,
        });
      }
    }
    if (c.NODE_ENV === 'production' && !c.DATABASE_URL) {
      ctx.addIssue({
        code: 'custom',
        path: ['DATABASE_URL'],
        message:
          'DATABASE_URL is required in production (the local Postgres is for development only)',
      });
    }
  });

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable means unset, as in most shells' `VAR= command`.
  const set = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = ConfigSchema.safeParse(set);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(config)'}: ${i.message}`);
  throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
}
