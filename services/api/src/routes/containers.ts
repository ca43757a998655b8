import { Router } from 'express';
import {
  createContainerBody,
  ListContainersQuery,
  type ContainerResource,
  type CreateContainerLimits,
  type NetworkPolicyParam,
  type SkillParam,
} from '@berth/contracts';
import type { z } from 'zod';
import {
  InvalidRequestError,
  unixSeconds,
  visibleStatus,
  type Clock,
  type ContainerRecord,
  type ContainerSkillParam,
  type ContainersService,
  type NetworkPolicy,
} from '@berth/core';
import { listBody } from '../http/list.js';
import { parseOrThrow } from '../http/validate.js';

type SkillParamBody = z.infer<typeof SkillParam>;

export function toContainerResource(c: ContainerRecord, now: Date): ContainerResource {
  return {
    id: c.id,
    object: 'container',
    name: c.name,
    created_at: c.createdAt,
    status: visibleStatus(c, now),
    last_active_at: unixSeconds(c.lastActiveAt),
    expires_after: { anchor: 'last_active_at', minutes: c.expiresAfterMinutes },
    memory_limit: c.memoryLimit,
    // domain_secrets are never echoed.
    network_policy:
      c.networkPolicy.type === 'allowlist'
        ? { type: 'allowlist', allowed_domains: c.networkPolicy.allowedDomains }
        : { type: 'disabled' },
    ...(c.skills?.length ? { skills: c.skills } : {}),
  };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The wire's skill params in the domain's words; an inline zip is decoded (strict base64). */
function toSkillParam(p: SkillParamBody, i: number): ContainerSkillParam {
  if (p.type === 'skill_reference')
    return {
      type: 'skill_reference',
      skillId: p.skill_id,
      ...(p.version !== undefined ? { version: String(p.version) } : {}),
    };
  if (!BASE64.test(p.source.data))
    throw new InvalidRequestError(`Invalid 'skills.${i}.source.data': it is not base64.`, {
      param: `skills.${i}.source.data`,
    });
  return {
    type: 'inline',
    name: p.name,
    description: p.description,
    zip: Buffer.from(p.source.data, 'base64'),
  };
}

/**
 * The wire's policy in the domain's words; the egress port checks and normalises it. Secrets
 * travel apart (`domainSecrets` of the create), in clear until the create seals them.
 */
const toNetworkPolicy = (p: NetworkPolicyParam): NetworkPolicy =>
  p.type === 'disabled'
    ? { type: 'disabled' }
    : { type: 'allowlist', allowedDomains: p.allowed_domains };

export interface ContainerRoutesOptions {
  containers: ContainersService;
  clock: Clock;
  limits: CreateContainerLimits;
}

export function containerRoutes({ containers, clock, limits }: ContainerRoutesOptions): Router {
  const router = Router();
  const CreateBody = createContainerBody(limits);

  router.post('/containers', async (req, res) => {
    const body = parseOrThrow(CreateBody, req.body ?? {});
    const skills = body.skills?.map(toSkillParam);
    const record = await containers.create(req.projectId, {
      name: body.name,
      expiresAfterMinutes: body.expires_after.minutes,
      memoryLimit: body.memory_limit,
      networkPolicy: toNetworkPolicy(body.network_policy),
      ...(body.network_policy.type === 'allowlist' && body.network_policy.domain_secrets
        ? { domainSecrets: body.network_policy.domain_secrets }
        : {}),
      ...(body.file_ids ? { fileIds: body.file_ids } : {}),
      ...(skills?.length ? { skills } : {}),
    });
    res.json(toContainerResource(record, clock.now()));
  });

  router.get('/containers', async (req, res) => {
    const query = parseOrThrow(ListContainersQuery, req.query);
    const page = await containers.list(req.projectId, query);
    const items = await containers.withSkills(page.items);
    const now = clock.now();
    res.json(listBody({ ...page, items }, (c) => toContainerResource(c, now)));
  });

  router.get('/containers/:id', async (req, res) => {
    const [record] = await containers.withSkills([
      await containers.get(req.projectId, req.params.id),
    ]);
    res.json(toContainerResource(record!, clock.now()));
  });

  router.delete('/containers/:id', async (req, res) => {
    await containers.delete(req.projectId, req.params.id);
    res.json({ id: req.params.id, object: 'container.deleted', deleted: true });
  });

  return router;
}
