import { Router } from 'express';
import {
  createContainerBody,
  ListContainersQuery,
  type ContainerResource,
  type CreateContainerLimits,
  type NetworkPolicyParam,
} from '@berth/contracts';
import {
  InvalidRequestError,
  unixSeconds,
  visibleStatus,
  type Clock,
  type ContainerRecord,
  type ContainersService,
  type NetworkPolicy,
} from '@berth/core';
import { listBody } from '../http/list.js';
import { parseOrThrow } from '../http/validate.js';
import { matchHost, normalizeHost, parseAllowlist, ruleToString } from '@berth/egress';

/** Variables Berth itself sets in a sandbox: a secret may not take their place. */
const RESERVED_NAMES = new Set(
  [
    'HOME',
    'LANG',
    'PATH',
    'TMPDIR',
    'MPLCONFIGDIR',
    'HTTP_PROXY',
    'HTTPS_PROXY',
    'NO_PROXY',
    'SSL_CERT_FILE',
    'REQUESTS_CA_BUNDLE',
    'CURL_CA_BUNDLE',
    'PIP_CERT',
    'GIT_SSL_CAINFO',
    'NODE_EXTRA_CA_CERTS',
  ].map((n) => n.toUpperCase()),
);

type ClearSecret = { domain: string; name: string; value: string };

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
  };
}

/**
 * Validates an allowlist entry by entry (the 400 names the entry) and normalises it; the
 * secrets, each for an allowlisted host, come back apart, to be sealed and never echoed. No
 * message ever quotes a secret's value.
 */
function toNetworkPolicy(
  p: NetworkPolicyParam,
  maxEntries: number,
): { policy: NetworkPolicy; secrets: ClearSecret[] } {
  if (p.type === 'disabled') return { policy: { type: 'disabled' }, secrets: [] };
  const parsed = parseAllowlist(p.allowed_domains, { maxEntries });
  if (!parsed.ok) {
    throw new InvalidRequestError(
      `Invalid 'network_policy.allowed_domains.${parsed.index}': ${parsed.message}.`,
      {
        param: `network_policy.allowed_domains.${parsed.index}`,
      },
    );
  }
  const names = new Set<string>();
  const secrets = (p.domain_secrets ?? []).map((secret, i): ClearSecret => {
    const param = `network_policy.domain_secrets.${i}`;
    const domain = normalizeHost(secret.domain);
    if (!domain)
      throw new InvalidRequestError(
        `Invalid '${param}.domain': a secret's domain must be one hostname (no wildcard, IP address, scheme or port).`,
        { param: `${param}.domain` },
      );
    if (!matchHost(domain, parsed.rules))
      throw new InvalidRequestError(
        `Invalid '${param}.domain': ${domain} is not covered by network_policy.allowed_domains.`,
        { param: `${param}.domain` },
      );
    if (RESERVED_NAMES.has(secret.name.toUpperCase()) || secret.name.startsWith('BERTH_'))
      throw new InvalidRequestError(
        `Invalid '${param}.name': ${secret.name} is set by the server itself.`,
        { param: `${param}.name` },
      );
    if (names.has(secret.name))
      throw new InvalidRequestError(
        `Invalid '${param}.name': another secret already has the name ${secret.name}.`,
        { param: `${param}.name` },
      );
    names.add(secret.name);
    return { domain, name: secret.name, value: secret.value };
  });
  return {
    policy: { type: 'allowlist', allowedDomains: [...new Set(parsed.rules.map(ruleToString))] },
    secrets,
  };
}

export interface ContainerRoutesOptions {
  containers: ContainersService;
  clock: Clock;
  limits: CreateContainerLimits & { maxAllowedDomains: number };
}

export function containerRoutes({ containers, clock, limits }: ContainerRoutesOptions): Router {
  const router = Router();
  const CreateBody = createContainerBody(limits);
  const maxAllowedDomains = limits.maxAllowedDomains;

  router.post('/containers', async (req, res) => {
    const body = parseOrThrow(CreateBody, req.body ?? {});
    const { policy: networkPolicy, secrets } = toNetworkPolicy(
      body.network_policy,
      maxAllowedDomains,
    );
    if (body.skills?.length) {
      throw new InvalidRequestError('skills are not supported on this server yet.', {
        param: 'skills',
        code: 'unsupported_parameter',
      });
    }
    const record = await containers.create(req.projectId, {
      name: body.name,
      expiresAfterMinutes: body.expires_after.minutes,
      memoryLimit: body.memory_limit,
      networkPolicy,
      ...(secrets.length > 0 ? { domainSecrets: secrets } : {}),
      ...(body.file_ids ? { fileIds: body.file_ids } : {}),
    });
    res.json(toContainerResource(record, clock.now()));
  });

  router.get('/containers', async (req, res) => {
    const query = parseOrThrow(ListContainersQuery, req.query);
    const page = await containers.list(req.projectId, query);
    const now = clock.now();
    res.json(listBody(page, (c) => toContainerResource(c, now)));
  });

  router.get('/containers/:id', async (req, res) => {
    const record = await containers.get(req.projectId, req.params.id);
    res.json(toContainerResource(record, clock.now()));
  });

  router.delete('/containers/:id', async (req, res) => {
    await containers.delete(req.projectId, req.params.id);
    res.json({ id: req.params.id, object: 'container.deleted', deleted: true });
  });

  return router;
}
