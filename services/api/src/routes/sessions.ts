import { Router } from 'express';
import {
  CreateSessionBody,
  sessionRunBody,
  type SessionLimits,
  type SessionResource,
  type SessionRunResource,
} from '@berth/contracts';
import { type SessionRecord, type SessionRunOutcome, type SessionsService } from '@berth/core';
import { parseOrThrow } from '../http/validate.js';
import { EventStream } from '../http/event-stream.js';

export interface SessionRoutesOptions {
  sessions: SessionsService;
  limits: SessionLimits & { defaultTimeoutMs: number };
}

const toResource = (s: SessionRecord): SessionResource => ({
  id: s.id,
  object: 'container.session',
  container_id: s.containerId,
  created_at: s.createdAt,
  status: s.status,
  status_reason: s.statusReason,
  last_run_at: s.lastRunAt ? Math.floor(s.lastRunAt.getTime() / 1000) : null,
});

const STATUS = {
  ok: 'ok',
  error: 'error',
  interrupted: 'interrupted',
  restarted: 'restarted',
  died: 'died',
  absent: 'died',
  busy: 'error',
} as const;

function toRunResource(o: SessionRunOutcome): SessionRunResource {
  return {
    id: o.id,
    object: 'container.session.run',
    session_id: o.sessionId,
    container_id: o.containerId,
    created_at: o.createdAt,
    status: STATUS[o.end],
    stdout: o.stdout,
    stdout_truncated: o.stdoutTruncated,
    stderr: o.stderr,
    stderr_truncated: o.stderrTruncated,
    result: o.result,
    error: o.error,
    outputs: o.displays.map((d) => ({ type: d.mimeType, data: d.data, path: d.path })),
    outputs_truncated: o.displaysTruncated,
    timed_out: o.end === 'interrupted' || o.end === 'restarted',
    interrupt:
      o.end === 'interrupted' ? 'keyboard_interrupt' : o.end === 'restarted' ? 'restarted' : null,
    interpreter_died: o.end === 'died',
    oom_killed: o.oomKilled,
    duration_ms: Math.round(o.durationMs),
  };
}

/** Stateful Python sessions in a container (ours; see docs/sessions.md). */
export function sessionRoutes({ sessions, limits }: SessionRoutesOptions): Router {
  const router = Router();
  const RunBody = sessionRunBody(limits);

  router.post('/containers/:id/sessions', async (req, res) => {
    parseOrThrow(CreateSessionBody, req.body ?? {});
    res.json(toResource(await sessions.create(req.projectId, req.params.id)));
  });

  router.get('/containers/:id/sessions', async (req, res) => {
    const data = (await sessions.list(req.projectId, req.params.id)).map(toResource);
    res.json({
      object: 'list',
      data,
      first_id: data[0]?.id ?? null,
      last_id: data.at(-1)?.id ?? null,
      has_more: false,
    });
  });

  router.get('/containers/:id/sessions/:sessionId', async (req, res) => {
    res.json(toResource(await sessions.get(req.projectId, req.params.id, req.params.sessionId)));
  });

  router.delete('/containers/:id/sessions/:sessionId', async (req, res) => {
    await sessions.delete(req.projectId, req.params.id, req.params.sessionId);
    res.json({ id: req.params.sessionId, object: 'container.session.deleted', deleted: true });
  });

  router.post('/containers/:id/sessions/:sessionId/restart', async (req, res) => {
    res.json(
      toResource(await sessions.restart(req.projectId, req.params.id, req.params.sessionId)),
    );
  });

  router.post('/containers/:id/sessions/:sessionId/run', async (req, res) => {
    const body = parseOrThrow(RunBody, req.body ?? {});
    const reserved = await sessions.reserve(req.projectId, req.params.id, req.params.sessionId);
    try {
      // A client that goes away interrupts the code (the session keeps its state).
      const abort = new AbortController();
      res.on('close', () => {
        if (!res.writableFinished) abort.abort();
      });
      const input = {
        code: body.code,
        timeoutMs: body.timeout_ms ?? limits.defaultTimeoutMs,
        signal: abort.signal,
      };
      if (!body.stream) {
        res.json(toRunResource(await sessions.run(reserved, input)));
        return;
      }
      const events = new EventStream(res);
      try {
        const outcome = await sessions.run(reserved, {
          ...input,
          onEvent: (e) => {
            if (e.type === 'display')
              events.send('display', {
                type: e.display.mimeType,
                data: e.display.data,
                path: e.display.path,
              });
            else events.send(e.type, { text: e.text });
          },
        });
        events.finish('result', toRunResource(outcome));
      } catch (error) {
        events.fail(error);
      }
    } finally {
      reserved.lease.release();
    }
  });
  return router;
}
