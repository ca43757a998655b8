export { ErrorEnvelope, ListQuery, listOf, Deleted } from './common.js';
export {
  MEMORY_LIMITS,
  MemoryLimit,
  DomainSecret,
  NetworkPolicyParam,
  SkillParam,
  createContainerBody,
  ContainerResource,
  ContainerList,
  ContainerDeleted,
  ListContainersQuery,
} from './containers.js';
export type { CreateContainerBody, CreateContainerLimits } from './containers.js';
export { execBody, ExecResource } from './exec.js';
export type { ExecBody, ExecLimits } from './exec.js';
export {
  FileObject,
  FileList,
  FileDeleted,
  ListFilesQuery,
  ContainerFileResource,
  ContainerFileList,
  ContainerFileDeleted,
  CreateContainerFileJson,
} from './files.js';
export { openApiDocument } from './openapi.js';
export type { OpenApiLimits } from './openapi.js';
export {
  sessionRunBody,
  CreateSessionBody,
  SessionResource,
  SessionRunResource,
  SessionOutput,
} from './sessions.js';
export type { SessionRunBody, SessionLimits } from './sessions.js';
