import { z } from 'zod';
import { noNul, runFields } from './common.js';
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface ExecLimits {
  maxTimeoutMs: number;
  maxStdinBytes: number;
}

/** `POST /v1/containers/{id}/exec` (ours: upstream has no such endpoint). */
export const execBody = (limits: ExecLimits) =>
  z
    .object({
      /** An argv array, or a string run by `sh -c`. */
      command: z.union([
        z.string().min(1).max(131_072).refine(noNul, 'NUL bytes are not allowed'),
        z
          .array(z.string().max(131_072).refine(noNul, 'NUL bytes are not allowed'))
          .min(1)
          .max(4096),
      ]),
      stdin: z
        .string()
        .refine(
          (s) => Buffer.byteLength(s) <= limits.maxStdinBytes,
          `stdin must be at most ${limits.maxStdinBytes} bytes`,
        )
        .optional(),
      env: z
        .record(
          z
            .string()
            .regex(ENV_NAME, 'names must match [A-Za-z_][A-Za-z0-9_]*')
            .refine((k) => !k.startsWith('BERTH_'), 'names starting with BERTH_ are reserved'),
          z.string().max(131_072).refine(noNul, 'NUL bytes are not allowed'),
        )
        .refine((env) => Object.keys(env).length <= 128, 'at most 128 variables')
        .optional(),
      workdir: z.string().max(4096).refine(noNul, 'NUL bytes are not allowed').optional(),
      ...runFields(limits.maxTimeoutMs),
    })
    .strict()
    .meta({ id: 'CreateExecBody' });
export type ExecBody = z.infer<ReturnType<typeof execBody>>;

export const ExecResource = z
  .object({
    id: z.string(),
    object: z.literal('container.exec'),
    container_id: z.string(),
    created_at: z.number().int(),
    exit_code: z.number().int().nullable(),
    stdout: z.string(),
    stdout_encoding: z.enum(['utf-8', 'base64']),
    stdout_truncated: z.boolean(),
    stderr: z.string(),
    stderr_encoding: z.enum(['utf-8', 'base64']),
    stderr_truncated: z.boolean(),
    timed_out: z.boolean(),
    oom_killed: z.boolean(),
    duration_ms: z.number(),
  })
  .meta({ id: 'ContainerExecResource' });
export type ExecResource = z.infer<typeof ExecResource>;
