import { Router } from 'express';
import type { EgressReport } from '@berth/contracts';
import type { ContainersService, EgressStats } from '@berth/core';
import type { z } from 'zod';

/**
 * `GET /v1/containers/{id}/egress` (ours): what the sandbox tried to reach through the proxy,
 * allowed and denied, with byte counts, since this API process started serving it.
 */
export function egressRoutes({
  containers,
  stats,
}: {
  containers: ContainersService;
  stats: (containerId: string) => EgressStats | null;
}): Router {
  const router = Router();
  router.get('/containers/:id/egress', async (req, res) => {
    const container = await containers.get(req.projectId, req.params.id);
    const s = stats(container.id);
    res.json({
      object: 'container.egress',
      container_id: container.id,
      network_policy: container.networkPolicy.type,
      allowed: s?.allowed ?? 0,
      denied: s?.denied ?? 0,
      bytes_up: s?.bytesUp ?? 0,
      bytes_down: s?.bytesDown ?? 0,
      // Per domain with secrets: how many placeholders were replaced (never by what).
      secret_substitutions: Object.entries(s?.substitutions ?? {}).map(([domain, count]) => ({
        domain,
        count,
      })),
      recent: (s?.recent ?? []).map((d) => ({
        decision: d.decision,
        host: d.host,
        port: d.port,
        reason: d.reason ?? null,
        bytes_up: d.bytesUp,
        bytes_down: d.bytesDown,
      })),
    } satisfies z.infer<typeof EgressReport>);
  });
  return router;
}
