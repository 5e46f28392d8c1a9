import { Type } from 'typebox';
import type { App, AppServices } from '../context.js';
import { ErrorResponse, EventQuery, Limit, LogEventSchema } from '../schemas.js';
import { parseTypes, type EventFilter, type LogEvent } from '../../events/log.js';
import { validation } from '../../core/errors.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse };

/** The event log: a page after a cursor, and a Server-Sent Events stream. */
export async function eventRoutes(app: App, s: AppServices): Promise<void> {
  const filterOf = async (q: { machine?: string | undefined; type?: string | undefined }): Promise<EventFilter> => ({
    ...(q.machine !== undefined ? { machineId: (await s.inventory.get(q.machine)).id } : {}),
    types: parseTypes(q.type),
  });

  app.get(
    '/api/v1/events',
    {
      schema: {
        tags: ['events'],
        summary: 'Events after a cursor (seq), oldest first; `next` continues',
        querystring: Type.Object({ ...EventQuery.properties, limit: Type.Optional(Limit) }, { additionalProperties: false }),
        response: { 200: Type.Object({ items: Type.Array(LogEventSchema), next: Type.Integer() }), ...errors },
      },
    },
    async (req) => s.events.list({ ...(await filterOf(req.query)), after: req.query.after ?? 0, limit: req.query.limit ?? 100 }),
  );

  app.get(
    '/api/v1/events/stream',
    {
      schema: {
        tags: ['events'],
        summary: 'Server-Sent Events: every event as it is committed (id = seq); resumes after Last-Event-ID',
        querystring: EventQuery,
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ maxLength: 32 })) }),
        response: { ...errors },
      },
    },
    async (req, reply) => {
      const lastId = req.headers['last-event-id'];
      if (lastId !== undefined && !/^\d{1,15}$/.test(lastId)) throw validation('Last-Event-ID', 'is not an event seq');
      const filter = await filterOf(req.query);
      // Neither Last-Event-ID nor `after`: from now on.
      const after = lastId !== undefined ? Number(lastId) : (req.query.after ?? (await s.events.head()));
      const stop = new AbortController();
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      res.write(': plinth event stream\n\n');
      req.raw.on('close', () => stop.abort());
      const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), s.config.ms.events.heartbeat);
      // No `event:` field: every event reaches EventSource's onmessage; its type is in the data.
      const frame = (e: LogEvent) => `id: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`;
      try {
        for await (const batch of s.events.follow({ ...filter, after }, stop.signal)) res.write(batch.map(frame).join(''));
      } catch (e) {
        req.log.error({ err: e }, 'event stream failed');
      } finally {
        clearInterval(heartbeat);
        res.end();
      }
    },
  );
}
