import { Type } from 'typebox';
import type { App, AppServices } from '../context.js';
import { ArtifactSchema, ErrorResponse, RunLogLine, RunSchema } from '../schemas.js';

const RunParams = Type.Object({ run: Type.String() }, { additionalProperties: false });
const errors = { 400: ErrorResponse, 401: ErrorResponse, 404: ErrorResponse };

export async function runRoutes(app: App, s: AppServices): Promise<void> {
  app.get(
    '/api/v1/runs/:run',
    { schema: { tags: ['runs'], summary: 'One run: steps, status, timestamps', params: RunParams, response: { 200: RunSchema, ...errors } } },
    async (req) => s.runs.get(req.params.run),
  );

  app.get(
    '/api/v1/runs/:run/log',
    {
      schema: {
        tags: ['runs'],
        summary: 'Log lines of a run, after line id `after`',
        params: RunParams,
        querystring: Type.Object(
          { after: Type.Optional(Type.Integer({ minimum: 0 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, default: 1000 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(RunLogLine) }), ...errors },
      },
    },
    async (req) => {
      const q = req.query;
      return { items: await s.runs.log(req.params.run, { limit: q.limit ?? 1000, ...(q.after !== undefined ? { after: q.after } : {}) }) };
    },
  );

  app.get(
    '/api/v1/runs/:run/artifacts',
    {
      schema: { tags: ['runs'], summary: 'Rendered artifacts kept with a run', params: RunParams, response: { 200: Type.Object({ items: Type.Array(ArtifactSchema) }), ...errors } },
    },
    async (req) => {
      return { items: await s.runs.artifacts(req.params.run) };
    },
  );

  app.get(
    '/api/v1/runs/:run/artifacts/:name',
    {
      schema: {
        tags: ['runs'],
        summary: 'The bytes of one artifact, exactly as rendered',
        params: Type.Object({ run: Type.String(), name: Type.String() }, { additionalProperties: false }),
      },
    },
    async (req, reply) => {
      const { run, name } = req.params;
      const a = await s.runs.artifact(run, name);
      return reply.header('content-type', a.contentType).header('etag', `"${a.sha256}"`).send(a.body);
    },
  );
}
