import { z } from 'zod';

/** Postgres refuses NUL in text and the kernel in names: no string a client sends may carry one. */
export const noNul = (s: string) => !s.includes('\0');
export const NUL_MESSAGE = 'NUL bytes are not allowed';
/** A string param: any text but NUL. Bounds go first, e.g. `text().min(1).max(64)`. */
export const text = () => z.string().refine(noNul, NUL_MESSAGE);

/** What a run (an exec, a session run) takes besides its code: a timeout up to the server's cap, and SSE. */
export const runFields = (maxTimeoutMs: number) => ({
  timeout_ms: z
    .number()
    .int()
    .min(1)
    .max(maxTimeoutMs, `timeout_ms must be at most ${maxTimeoutMs}`)
    .optional(),
  stream: z.boolean().default(false),
});

export const ErrorEnvelope = z
  .object({
    error: z.object({
      message: z.string(),
      type: z.string(),
      param: z.string().nullable(),
      code: z.string().nullable(),
    }),
  })
  .meta({ id: 'ErrorEnvelope' });
export type ErrorEnvelope = z.infer<typeof ErrorEnvelope>;

/** Query strings arrive as text; `limit` is coerced but never silently clamped. */
export const ListQuery = z
  .object({
    limit: z.coerce
      .number({ error: 'limit must be an integer between 1 and 100' })
      .int('limit must be an integer between 1 and 100')
      .min(1, 'limit must be an integer between 1 and 100')
      .max(100, 'limit must be an integer between 1 and 100')
      .default(20),
    order: z.enum(['asc', 'desc']).default('desc'),
    after: text().min(1).max(128).optional(),
  })
  .strict();
export type ListQuery = z.infer<typeof ListQuery>;

export const listOf = <T extends z.ZodType>(item: T, id: string) =>
  z
    .object({
      object: z.literal('list'),
      data: z.array(item),
      first_id: z.string().nullable(),
      last_id: z.string().nullable(),
      has_more: z.boolean(),
    })
    .meta({ id });

export const Deleted = <O extends string>(object: O, id: string) =>
  z.object({ id: z.string(), object: z.literal(object), deleted: z.literal(true) }).meta({ id });
