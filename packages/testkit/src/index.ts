export { createTestDatabase } from './postgres.js';
export type { TestDatabase, TestDatabaseOptions } from './postgres.js';
export { postgresImage, provisionedSetting } from './postgres-image.js';
export {
  dockerExec,
  inspectSandbox,
  labelledRuntime,
  removeProbes,
  removeSandboxByHand,
  sandboxImage,
  testDocker,
} from './docker.js';
export type { ExecOutput } from './docker.js';
export { DockerSocketProxy } from './docker-proxy.js';
export type { ProxiedRequest } from './docker-proxy.js';
export { aContainer, aSandboxSpec, RECORD_EPOCH } from './builders.js';
export { SocketSwitch } from './socket-switch.js';
export { listenOn, selfSignedCertificate } from './upstreams.js';
export type { TestCertificate } from './upstreams.js';
export { startPostgresServer } from './postgres-server.js';
export type { PostgresServer, PostgresServerOptions } from './postgres-server.js';
