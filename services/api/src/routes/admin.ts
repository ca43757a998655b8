import { totalmem } from 'node:os';
import { Router } from 'express';
import { z } from 'zod';
import {
  expiresAt,
  memoryLimitBytes,
  visibleStatus,
  type AdminStore,
  type Clock,
  type ContainerRecord,
  type EventStore,
  type SandboxUsage,
  type SandboxUsageReader,
  type StoredEvent,
  type EgressStats,
} from '@berth/core';
import { parseOrThrow } from '../http/validate.js';
import { requireAdmin } from '../http/admin-auth.js';
import { listBody } from '../http/list.js';

const limit = z.coerce
  .number({ error: 'limit must be an integer between 1 and 200' })
  .int('limit must be an integer between 1 and 200')
  .min(1, 'limit must be an integer between 1 and 200')
  .max(200, 'limit must be an integer between 1 and 200')
  .default(50);

const ContainersQuery = z
  .object({
    limit,
    after: z.string().min(1).max(128).optional(),
    status: z.enum(['running', 'expired', 'failed']).optional(),
    project: z.string().min(1).max(128).optional(),
    memory_limit: z.enum(['1g', '4g', '16g', '64g']).optional(),
    expiring_within_minutes: z.coerce.number().int().min(0).max(10_080).optional(),
  })
  .strict();

const EventsQuery = z
  .object({
    limit,
    before: z.coerce.number().int().min(1).optional(),
    kind: z
      .enum(['created', 'expired', 'deleted', 'failed', 'oom', 'exec_timed_out', 'egress_denied'])
      .optional(),
    container_id: z.string().min(1).max(128).optional(),
    since: z.coerce.number().int().min(0).optional(),
  })
  .strict();

export interface AdminRoutesOptions {
  admin: AdminStore;
  events: EventStore;
  usage: SandboxUsageReader | null;
  /** How long one page waits for live usage before answering without it. */
  usageDeadlineMs: number;
  egressStats: (containerId: string) => EgressStats | null;
  clock: Clock;
  onUsageError?: (error: unknown) => void;
}

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

const eventResource = (e: StoredEvent) => ({
  id: String(e.id),
  object: 'admin.event',
  at: seconds(e.at),
  kind: e.kind,
  container_id: e.containerId,
  project_id: e.projectId,
  reason: e.reason,
});

/** `/v1/admin/*`: Berth's own operator API (not OpenAI's), for admin keys only. */
export function adminRoutes(options: AdminRoutesOptions): Router {
  const { admin, events, clock } = options;
  const router = Router();
  router.use('/admin', requireAdmin(admin));

  router.get('/admin/summary', async (_req, res) => {
    const s = await admin.summary(clock.now());
    res.json({
      object: 'admin.summary',
      at: seconds(clock.now()),
      containers: { by_status: s.byStatus },
      projects: s.byProject.map((p) => ({
        project_id: p.projectId,
        name: p.projectName,
        running: p.running,
        memory_committed_bytes: p.memoryBytes,
      })),
      memory: {
        committed_bytes: s.memoryCommittedBytes,
        pool_committed_bytes: s.poolCommittedBytes,
        host_bytes: totalmem(),
      },
      pool: s.pool.map((p) => ({ memory_limit: p.memoryLimit, state: p.state, count: p.count })),
      reaper: {
        backlog: s.reaperBacklog,
        oldest_overdue_at: s.oldestOverdue ? seconds(s.oldestOverdue) : null,
      },
    });
  });

  router.get('/admin/containers', async (req, res) => {
    const q = parseOrThrow(ContainersQuery, req.query);
    const now = clock.now();
    const page = await admin.listContainers({
      limit: q.limit,
      after: q.after,
      status: q.status,
      projectId: q.project,
      memoryLimit: q.memory_limit,
      expiringWithinMinutes: q.expiring_within_minutes,
      now,
    });
    const running = page.items.filter((c) => visibleStatus(c, now) === 'running').map((c) => c.id);
    let usage = new Map<string, SandboxUsage>();
    if (options.usage && running.length > 0) {
      // Usage is a nicety: a slow or failing read answers the page without it, never a 5xx.
      usage = await options.usage.read(running, options.usageDeadlineMs).catch((error: unknown) => {
        options.onUsageError?.(error);
        return new Map<string, SandboxUsage>();
      });
    }
    const toResource = (c: ContainerRecord) => {
      const u = usage.get(c.id);
      const egress = options.egressStats(c.id);
      return {
        id: c.id,
        object: 'admin.container',
        project_id: c.projectId,
        name: c.name,
        status: visibleStatus(c, now),
        status_reason: c.statusReason,
        created_at: c.createdAt,
        last_active_at: seconds(c.lastActiveAt),
        expires_at: seconds(expiresAt(c)),
        memory_limit: c.memoryLimit,
        memory_limit_bytes: memoryLimitBytes(c.memoryLimit),
        network_policy: c.networkPolicy.type,
        usage: u
          ? { memory_bytes: u.memoryBytes, cpu_seconds: u.cpuSeconds, processes: u.processes }
          : null,
        egress: egress
          ? {
              allowed: egress.allowed,
              denied: egress.denied,
              bytes_up: egress.bytesUp,
              bytes_down: egress.bytesDown,
            }
          : null,
      };
    };
    res.json(listBody(page, toResource));
  });

  router.get('/admin/events', async (req, res) => {
    const q = parseOrThrow(EventsQuery, req.query);
    const page = await events.list({
      limit: q.limit,
      before: q.before,
      kind: q.kind,
      containerId: q.container_id,
      since: q.since === undefined ? undefined : new Date(q.since * 1000),
    });
    res.json(listBody(page, eventResource));
  });
  return router;
}
