/** Every Docker object Berth makes carries these, so a reconciler can find it by label alone. */
export const LABELS = {
  managedBy: 'org.berth.managed-by',
  instance: 'org.berth.instance',
  containerId: 'org.berth.container-id',
  projectId: 'org.berth.project-id',
  /** A warm-pool sandbox's slot; Docker labels can't change, so it keeps it after a claim. */
  poolSlot: 'org.berth.pool-slot',
} as const;

export const MANAGED_BY = 'berth';

export function sandboxLabels(
  instance: string,
  containerId: string,
  projectId: string,
): Record<string, string> {
  return {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.instance]: instance,
    [LABELS.containerId]: containerId,
    [LABELS.projectId]: projectId,
  };
}

/** A warm-pool sandbox: this instance's, no container or project yet (Postgres binds them). */
export function poolLabels(instance: string, slotId: string): Record<string, string> {
  return {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.instance]: instance,
    [LABELS.poolSlot]: slotId,
  };
}

/** A Docker list filter for this instance's sandboxes. */
export const instanceFilter = (instance: string): { label: string[] } => ({
  label: [`${LABELS.managedBy}=${MANAGED_BY}`, `${LABELS.instance}=${instance}`],
});

export const sandboxName = (containerId: string): string => `berth-${containerId}`;
