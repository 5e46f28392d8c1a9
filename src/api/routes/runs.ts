import { Type } from 'typebox';
import type { App, AppServices } from '../context.js';
import { ArtifactSchema, ErrorResponse, RunLogLine, RunSchema } from '../schemas.js';
import { getArtifact, getRun, listArtifacts, readRunLog } from '../../runs/runs.js';

const RunParams = Type.Object({ run: Type.String() }, { additionalProperties: false });
const errors = { 400: ErrorResponse, 401: ErrorResponse, 404: ErrorResponse };

export async function runRoutes(app: App, s: AppServices): Promise<void> {
  app.get(
    '/api/v1/runs/:run',
    { schema: { tags: ['runs'], summary: 'One run: steps, status, timestamps', params: RunParams, response: { 200: RunSchema, ...errors } } },
    async (req) => getRun(s.store.db, req.params.run),
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
      const run = await getRun(s.store.db, req.params.run);
      const q = req.query;
      return { items: await readRunLog(s.store.db, run.id, { limit: q.limit ?? 1000, ...(q.after !== undefined ? { after: q.after } : {}) }) };
    },
  );

  app.get(
    '/api/v1/runs/:run/artifacts',
    {
      schema: { tags: ['runs'], summary: 'Rendered artifacts kept with a run', params: RunParams, response: { 200: Type.Object({ items: Type.Array(ArtifactSchema) }), ...errors } },
    },
    async (req) => {
      const run = await getRun(s.store.db, req.params.run);
      return { items: await listArtifacts(s.store.db, run.id) };
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
      const a = await getArtifact(s.store.db, run, name);
      return reply.header('content-type', a.contentType).header('etag', `"${a.sha256}"`).send(a.body);
    },
  );
}
