export { BundleError } from './bundle-error.js';
export { readZip, pathProblem } from './zip-reader.js';
export type { ZipLimits, ZipFileEntry } from './zip-reader.js';
export { writeZip } from './zip-writer.js';
export {
  BUNDLE_LIMITS,
  MAX_DESCRIPTION,
  bundleFromFiles,
  bundleFromUpload,
  bundleFromZip,
  bundleToZip,
  parseFrontMatter,
  skillNameProblem,
} from './bundle.js';
export type { SkillBundle } from './bundle.js';
