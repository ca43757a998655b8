// Fakes of core's ports, for unit tests of the use cases: no Docker, no Postgres, no clock but the
// one handed in. A separate entry point so that loading them loads neither pg nor dockerode.
export { aContainer, RECORD_EPOCH } from '../builders.js';
export { deferred, never, rejection } from './hooks.js';
export type { Hooks } from './hooks.js';
export { FakeContainerStore } from './container-store.js';
export { FakeSandboxRuntime } from './sandbox-runtime.js';
export type { FakeSandbox } from './sandbox-runtime.js';
export { FakeSandboxExecutor } from './sandbox-executor.js';
export type { FakeCommand } from './sandbox-executor.js';
export { FakeEgressController } from './egress-controller.js';
export { FakeBlobStore, FakeFileStore } from './file-store.js';
