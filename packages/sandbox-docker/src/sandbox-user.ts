/** `uid:gid` of a sandbox's own user (gid = uid); never root, whatever the caller passes. */
export function sandboxUser(uid: number): string {
  if (!Number.isSafeInteger(uid) || uid <= 0) throw new Error(`refusing sandbox uid ${uid}`);
  return `${uid}:${uid}`;
}
