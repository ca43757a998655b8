import { Router } from 'express';
import type { Clock, ContainerRestorer } from '@berth/core';
import { toContainerResource } from './containers.js';

/** `POST /v1/containers/{id}/restore` (ours; docs/files.md): a new container from an archive. */
export function restoreRoutes({
  restorer,
  clock,
}: {
  restorer: ContainerRestorer;
  clock: Clock;
}): Router {
  const router = Router();
  router.post('/containers/:id/restore', async (req, res) => {
    const restored = await restorer.restore(req.projectId, req.params.id);
    res.json(toContainerResource(restored, clock.now()));
  });
  return router;
}
