import { z } from 'zod';

/** `GET /v1/containers/{id}/egress` (ours): what the sandbox tried to reach through the proxy. */
export const EgressReport = z
  .object({
    object: z.literal('container.egress'),
    container_id: z.string(),
    network_policy: z.enum(['disabled', 'allowlist']),
    allowed: z.number().int(),
    denied: z.number().int(),
    bytes_up: z.number().int(),
    bytes_down: z.number().int(),
    /** Per domain with a secret: how many placeholders the proxy replaced (never with what). */
    secret_substitutions: z.array(z.object({ domain: z.string(), count: z.number().int() })),
    recent: z.array(
      z.object({
        decision: z.enum(['allowed', 'denied']),
        host: z.string(),
        port: z.number().int(),
        reason: z.string().nullable(),
        bytes_up: z.number().int(),
        bytes_down: z.number().int(),
      }),
    ),
  })
  .meta({ id: 'ContainerEgressReport' });
