import { newId, unixSeconds, type ContainerRecord, type SandboxSpec } from '@berth/core';

/** The instant records are built at unless told otherwise (ManualClock's default start, too). */
export const RECORD_EPOCH = new Date(Date.UTC(2026, 0, 1));

// Unique per worker: the store refuses two live rows with one sandbox uid.
let nextUid = 100_000;

/**
 * A running container record, valid as the store would hold it: its id encodes `createdAt`, which
 * defaults to `lastActiveAt`; every record gets a sandbox uid of its own. Override what the test
 * is about and nothing else.
 */
export function aContainer(overrides: Partial<ContainerRecord> = {}): ContainerRecord {
  const lastActiveAt = overrides.lastActiveAt ?? RECORD_EPOCH;
  const createdAt = overrides.createdAt ?? unixSeconds(lastActiveAt);
  return {
    id: newId('container', createdAt),
    projectId: 'proj_test',
    name: 'c',
    createdAt,
    status: 'running',
    lastActiveAt,
    expiresAfterMinutes: 20,
    memoryLimit: '1g',
    networkPolicy: { type: 'disabled' },
    statusReason: null,
    sandboxUid: ++nextUid,
    ...overrides,
  };
}

/**
 * What a runtime is asked to create: a 1 GiB sandbox without network, with an id of now and a
 * uid of its own. Override what the test is about.
 */
export function aSandboxSpec(overrides: Partial<SandboxSpec> = {}): SandboxSpec {
  return {
    containerId: newId('container', unixSeconds(new Date())),
    projectId: 'proj_test',
    uid: ++nextUid,
    memoryLimitBytes: 1024 ** 3,
    network: { type: 'disabled' },
    ...overrides,
  };
}
