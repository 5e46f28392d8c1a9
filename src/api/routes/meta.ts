import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { AppServices } from '../context.js';
import { errorBody } from '../errors.js';
import { TRANSITIONS, FAILED_STATE } from '../../lifecycle/states.js';
import { STATES, TRANSITIONAL } from '../../core/states.js';

export async function metaRoutes(app: FastifyInstance, s: AppServices): Promise<void> {
  app.get(
    '/healthz',
    {
      config: { role: 'public' },
      schema: { tags: ['meta'], summary: 'Answers 200 when the database is reachable', security: [] },
    },
    async (_req, reply) => {
      try {
        await s.store.ping();
        return { status: 'ok', database: s.store.dialect };
      } catch (e) {
        return reply.status(503).send(errorBody('unavailable', `database unreachable: ${(e as Error).message}`));
      }
    },
  );

  app.get(
    '/api/v1/lifecycle',
    {
      schema: {
        tags: ['meta'],
        summary: 'The provision states and the transition table',
        response: {
          200: Type.Object({
            states: Type.Array(Type.String()),
            transitional: Type.Array(Type.String()),
            failedState: Type.Record(Type.String(), Type.String()),
            transitions: Type.Array(
              Type.Object({
                action: Type.String(),
                from: Type.String(),
                to: Type.String(),
                by: Type.Array(Type.String()),
                destructive: Type.Boolean(),
                run: Type.Union([Type.String(), Type.Null()]),
                why: Type.String(),
              }),
            ),
          }),
        },
      },
    },
    async () => ({
      states: [...STATES],
      transitional: [...TRANSITIONAL],
      failedState: FAILED_STATE,
      transitions: TRANSITIONS.map((t) => ({
        action: t.action,
        from: t.from,
        to: t.to,
        by: [...t.by],
        destructive: Boolean(t.destructive),
        run: t.run ?? null,
        why: t.why,
      })),
    }),
  );

  app.get(
    '/api/v1/whoami',
    {
      schema: {
        tags: ['meta'],
        summary: 'The token this request used',
        response: { 200: Type.Object({ name: Type.String(), role: Type.String(), tokenId: Type.String() }) },
      },
    },
    async (req) => req.principal!,
  );
}
