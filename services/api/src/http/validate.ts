import type { z } from 'zod';
import { InvalidRequestError } from '@berth/core';

/** A dotted path the way OpenAI names params: `network_policy.allowed_domains.0`. */
const dotted = (path: readonly PropertyKey[]): string => path.map(String).join('.');

const valueAt = (input: unknown, path: readonly PropertyKey[]): unknown =>
  path.reduce<unknown>(
    (value, key) =>
      value !== null && typeof value === 'object'
        ? (value as Record<PropertyKey, unknown>)[key]
        : undefined,
    input,
  );

function describe(issue: z.core.$ZodIssue, input: unknown): { param: string; message: string } {
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    const param = dotted([...issue.path, key]);
    return { param, message: `Unknown parameter: '${param}'.` };
  }
  const param = dotted(issue.path);
  if (issue.code === 'invalid_type' && valueAt(input, issue.path) === undefined) {
    return { param, message: `Missing required parameter: '${param}'.` };
  }
  return { param, message: `Invalid '${param}': ${issue.message}.` };
}

/** Parses input with a schema; the first problem becomes a 400 naming its `param`. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (!issue) throw new InvalidRequestError('Invalid request.');
  const { param, message } = describe(issue, input);
  throw new InvalidRequestError(message, { param: param || null });
}
