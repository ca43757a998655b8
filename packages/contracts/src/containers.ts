import { z } from 'zod';
import { ListQuery, listOf, Deleted, text } from './common.js';
import { ContainerSkill } from './skills.js';

export const MEMORY_LIMITS = ['1g', '4g', '16g', '64g'] as const;
export const MemoryLimit = z.enum(MEMORY_LIMITS).meta({ id: 'ContainerMemoryLimit' });
export type MemoryLimit = z.infer<typeof MemoryLimit>;

export const DomainSecret = z
  .object({
    domain: text().min(1).max(253),
    name: text()
      .min(1)
      .max(128)
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'name must be an environment variable name'),
    value: text().min(1).max(10_485_760),
  })
  .strict();

export const NetworkPolicyDisabled = z.object({ type: z.literal('disabled') }).strict();
export const NetworkPolicyAllowlist = z
  .object({
    type: z.literal('allowlist'),
    // Entry syntax is checked in depth by the egress policy (packages/core), which names the entry.
    allowed_domains: z.array(text().min(1).max(253)).min(1),
    domain_secrets: z.array(DomainSecret).min(1).optional(),
  })
  .strict();
export const NetworkPolicyParam = z.discriminatedUnion('type', [
  NetworkPolicyDisabled,
  NetworkPolicyAllowlist,
]);
export type NetworkPolicyParam = z.infer<typeof NetworkPolicyParam>;

export const SkillParam = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('skill_reference'),
      skill_id: text().min(1).max(64),
      // Upstream types it a string ('1', 'latest'); SDK users also send the integer.
      version: z.union([z.number().int().min(1), text().min(1).max(16)]).optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('inline'),
      name: text().min(1),
      description: text(),
      source: z
        .object({
          type: z.literal('base64'),
          media_type: z.literal('application/zip'),
          data: text().min(1).max(70_254_592),
        })
        .strict(),
    })
    .strict(),
]);

/** Bounds that are server settings; the schema is built with them. */
export interface CreateContainerLimits {
  maxExpiryMinutes: number;
  maxFileIds: number;
}

export const createContainerBody = (limits: CreateContainerLimits) =>
  z
    .object({
      name: text().min(1).max(256),
      expires_after: z
        .object({
          anchor: z.literal('last_active_at'),
          minutes: z
            .number()
            .int()
            .min(1)
            .max(
              limits.maxExpiryMinutes,
              `minutes must be at most ${limits.maxExpiryMinutes} on this server`,
            ),
        })
        .strict()
        .default({ anchor: 'last_active_at', minutes: 20 }),
      file_ids: z.array(text().min(1).max(128)).max(limits.maxFileIds).optional(),
      memory_limit: MemoryLimit.default('1g'),
      network_policy: NetworkPolicyParam.default({ type: 'disabled' }),
      skills: z.array(SkillParam).max(200).optional(),
    })
    .strict()
    .meta({ id: 'CreateContainerBody' });
export type CreateContainerBody = z.infer<ReturnType<typeof createContainerBody>>;

export const ContainerResource = z
  .object({
    id: z.string(),
    object: z.literal('container'),
    name: z.string(),
    created_at: z.number().int(),
    status: z.enum(['running', 'expired', 'failed']),
    last_active_at: z.number().int(),
    expires_after: z.object({ anchor: z.literal('last_active_at'), minutes: z.number().int() }),
    memory_limit: MemoryLimit,
    network_policy: z.object({
      type: z.enum(['disabled', 'allowlist']),
      allowed_domains: z.array(z.string()).optional(),
    }),
    /** (ours) Present when the container was created with skills: where each one is. */
    skills: z.array(ContainerSkill).optional(),
  })
  .meta({ id: 'ContainerResource' });
export type ContainerResource = z.infer<typeof ContainerResource>;

export const ContainerList = listOf(ContainerResource, 'ContainerListResource');
export const ContainerDeleted = Deleted('container.deleted', 'ContainerDeletedResource');

export const ListContainersQuery = ListQuery.extend({
  name: text().min(1).max(256).optional(),
});
export type ListContainersQuery = z.infer<typeof ListContainersQuery>;
