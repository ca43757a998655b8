/** A skill bundle the client sent is unusable; the message says why, for a 400. */
export class BundleError extends Error {
  override name = 'BundleError';
}
