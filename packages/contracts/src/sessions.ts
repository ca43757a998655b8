import { z } from 'zod';
import { noNul, runFields } from './common.js';

export interface SessionLimits {
  maxTimeoutMs: number;
  maxCodeBytes: number;
}

/** `POST /v1/containers/{id}/sessions/{session_id}/run` (ours). */
export const sessionRunBody = (limits: SessionLimits) =>
  z
    .object({
      code: z
        .string()
        .refine(noNul, 'NUL bytes are not allowed')
        .refine(
          (s) => Buffer.byteLength(s) <= limits.maxCodeBytes,
          `code must be at most ${limits.maxCodeBytes} bytes`,
        ),
      ...runFields(limits.maxTimeoutMs),
    })
    .strict()
    .meta({ id: 'RunSessionBody' });
export type SessionRunBody = z.infer<ReturnType<typeof sessionRunBody>>;

/** `POST /v1/containers/{id}/sessions` takes no fields today; unknown ones are refused. */
export const CreateSessionBody = z.object({}).strict().meta({ id: 'CreateSessionBody' });

export const SessionResource = z
  .object({
    id: z.string(),
    object: z.literal('container.session'),
    container_id: z.string(),
    created_at: z.number().int(),
    status: z.enum(['ready', 'dead']),
    status_reason: z.string().nullable(),
    last_run_at: z.number().int().nullable(),
  })
  .meta({ id: 'ContainerSessionResource' });
export type SessionResource = z.infer<typeof SessionResource>;

export const SessionOutput = z.object({
  type: z.literal('image/png'),
  /** base64 of the PNG. */
  data: z.string(),
  /** The same bytes under /mnt/data, or null if saving them failed. */
  path: z.string().nullable(),
});

export const SessionRunResource = z
  .object({
    id: z.string(),
    object: z.literal('container.session.run'),
    session_id: z.string(),
    container_id: z.string(),
    created_at: z.number().int(),
    status: z.enum(['ok', 'error', 'interrupted', 'restarted', 'died']),
    stdout: z.string(),
    stdout_truncated: z.boolean(),
    stderr: z.string(),
    stderr_truncated: z.boolean(),
    /** repr() of the last expression (as Jupyter's execute_result), or null. */
    result: z.string().nullable(),
    error: z
      .object({ name: z.string(), value: z.string(), traceback: z.array(z.string()) })
      .nullable(),
    outputs: z.array(SessionOutput),
    outputs_truncated: z.boolean(),
    timed_out: z.boolean(),
    /** At the timeout: `keyboard_interrupt` (the session kept its state) or `restarted` (fresh). */
    interrupt: z.enum(['keyboard_interrupt', 'restarted']).nullable(),
    interpreter_died: z.boolean(),
    oom_killed: z.boolean(),
    duration_ms: z.number(),
  })
  .meta({ id: 'ContainerSessionRunResource' });
export type SessionRunResource = z.infer<typeof SessionRunResource>;
