import { Type } from 'typebox';
import type { App, AppServices } from '../context.js';
import { ErrorResponse, MachineParams } from '../schemas.js';
import type { HealthService } from '../../health/service.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse };
const Tuple = Type.Tuple([Type.String(), Type.String(), Type.String(), Type.String()]);
export const HealthRecordSchema = Type.Object(
  {
    machine: Type.String(),
    runId: Type.String(),
    finishedAt: Type.String({ format: 'date-time' }),
    status: Type.Union([Type.Literal('passed'), Type.Literal('failed')]),
    durationMs: Type.Integer(),
    tuples: Type.Array(Tuple, { description: "eDeploy tuples, as redhat-cip/hardware's benchmarks name them" }),
    figures: Type.Record(Type.String(), Type.Number(), { description: '`class/id/key` → value' }),
    problems: Type.Array(Type.String()),
  },
  { $id: 'HealthRun' },
);
const ComparisonSchema = Type.Object({
  profile: Type.String(),
  k: Type.Number(),
  minDrop: Type.Number(),
  figures: Type.Array(
    Type.Object({
      figure: Type.String(),
      median: Type.Number(),
      mad: Type.Number(),
      threshold: Type.Union([Type.Number(), Type.Null()]),
      machines: Type.Array(Type.Object({ machine: Type.String(), value: Type.Number(), outlier: Type.Boolean() })),
    }),
  ),
  outliers: Type.Record(Type.String(), Type.Array(Type.String()), { description: 'machine → the figures it is an outlier on' }),
  runs: Type.Array(HealthRecordSchema),
  missing: Type.Array(Type.String(), { description: 'machines of the profile without a passed health run' }),
});

/** Health checks (docs/health.md): a machine's health runs, and the comparison of a profile's machines. */
export function healthRoutes(health: HealthService) {
  return async (app: App, s: AppServices): Promise<void> => {
    app.get(
      '/api/v1/machines/:machine/health',
      {
        schema: {
          tags: ['health'],
          summary: "The machine's health runs (benchmark figures), newest first",
          params: MachineParams,
          querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) }, { additionalProperties: false }),
          response: { 200: Type.Object({ items: Type.Array(HealthRecordSchema) }), ...errors },
        },
      },
      async (req) => {
        const m = await s.inventory.get(req.params.machine);
        return { items: await health.history(m.id, m.name, req.query.limit) };
      },
    );
    app.get(
      '/api/v1/profiles/:profile/health',
      {
        schema: {
          tags: ['health'],
          summary: "The latest health figures of a profile's machines, compared: outliers fall below median − k·MAD and more than minDrop below the median",
          params: Type.Object({ profile: Type.String({ maxLength: 100 }) }, { additionalProperties: false }),
          querystring: Type.Object(
            {
              k: Type.Optional(Type.Number({ minimum: 0, maximum: 100, description: 'scaled MADs below the median (default 3)' })),
              minDrop: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'fraction below the median a value must also fall (default 0.1)' })),
            },
            { additionalProperties: false },
          ),
          response: { 200: ComparisonSchema, ...errors },
        },
      },
      async (req) => health.compare(req.params.profile, { ...(req.query.k !== undefined ? { k: req.query.k } : {}), ...(req.query.minDrop !== undefined ? { minDrop: req.query.minDrop } : {}) }),
    );
  };
}
