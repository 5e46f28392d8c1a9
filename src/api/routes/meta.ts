import { Type } from 'typebox';
import type { App, AppServices } from '../context.js';
import { PlinthError, messageOf } from '../../core/errors.js';
import { TRANSITIONS, FAILED_STATE } from '../../lifecycle/states.js';
import { STATES, TRANSITIONAL } from '../../core/states.js';
import { settingsView } from '../../config/settings-view.js';

export async function metaRoutes(app: App, s: AppServices): Promise<void> {
  app.get(
    '/healthz',
    {
      config: { role: 'public' },
      schema: { tags: ['meta'], summary: 'Answers 200 when the database is reachable', security: [] },
    },
    async () => {
      try {
        await s.store.ping();
      } catch (e) {
        throw new PlinthError('unavailable', `database unreachable: ${messageOf(e)}`, { cause: e });
      }
      return { status: 'ok', database: s.store.dialect };
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

  app.get(
    '/api/v1/settings',
    {
      schema: {
        tags: ['meta'],
        summary: "The controller's settings (configuration file, environment, flags and defaults), without its secrets",
        response: { 200: Type.Record(Type.String(), Type.Unknown()) },
      },
    },
    async () => settingsView(s.config),
  );
}
