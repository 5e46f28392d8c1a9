import { Type } from 'typebox';
import type { App, AppServices } from '../context.js';
import { ErrorResponse, MachineParams } from '../schemas.js';
import { SCRIPT_MAX_BYTES, SCRIPT_NAME_PATTERN } from '../../protocol/agent.js';
import type { ScriptService } from '../../runs/scripts.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 413: ErrorResponse };
const Name = Type.String({ pattern: SCRIPT_NAME_PATTERN });
export const LibraryScriptSchema = Type.Object(
  {
    name: Type.String(),
    content: Type.String(),
    inspect: Type.Boolean({ description: 'runs in every inspection' }),
    timeoutSeconds: Type.Integer(),
    description: Type.Union([Type.String(), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Script' },
);
export const ScriptRecordSchema = Type.Object(
  {
    id: Type.Integer(),
    machineId: Type.String(),
    runId: Type.String(),
    name: Type.String(),
    exitCode: Type.Union([Type.Integer(), Type.Null()]),
    timedOut: Type.Boolean(),
    status: Type.Union([Type.Literal('passed'), Type.Literal('failed')]),
    durationMs: Type.Integer(),
    output: Type.String(),
    files: Type.Array(Type.Object({ name: Type.String(), sizeBytes: Type.Integer(), truncated: Type.Boolean() })),
    finishedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'ScriptResult' },
);
const PutBody = Type.Object(
  {
    content: Type.String({ minLength: 3, maxLength: SCRIPT_MAX_BYTES, pattern: '^#!', description: 'the program, starting with #!' }),
    inspect: Type.Optional(Type.Boolean({ description: 'run it in every inspection (default false)' })),
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400, description: 'default 3600' })),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);

/** Operators' scripts (docs/scripts.md): the library, and what they gave on each machine. */
export function scriptRoutes(scripts: ScriptService) {
  return async (app: App, s: AppServices): Promise<void> => {
    app.get(
      '/api/v1/scripts',
      { schema: { tags: ['scripts'], summary: 'The script library', response: { 200: Type.Object({ items: Type.Array(LibraryScriptSchema) }), ...errors } } },
      async () => ({ items: await scripts.list() }),
    );
    app.get(
      '/api/v1/scripts/:name',
      { schema: { tags: ['scripts'], summary: 'One library script', params: Type.Object({ name: Name }, { additionalProperties: false }), response: { 200: LibraryScriptSchema, ...errors } } },
      async (req) => scripts.get(req.params.name),
    );
    app.put(
      '/api/v1/scripts/:name',
      {
        config: { role: 'admin' },
        bodyLimit: 2 * SCRIPT_MAX_BYTES,
        schema: { tags: ['scripts'], summary: 'Create or replace a library script', params: Type.Object({ name: Name }, { additionalProperties: false }), body: PutBody, response: { 200: LibraryScriptSchema, 201: LibraryScriptSchema, ...errors } },
      },
      async (req, reply) => {
        const r = await scripts.put({ name: req.params.name, ...req.body });
        req.log.info({ script: r.script.name, inspect: r.script.inspect, created: r.created, by: req.principal?.name }, 'script stored');
        return reply.status(r.created ? 201 : 200).send(r.script);
      },
    );
    app.delete(
      '/api/v1/scripts/:name',
      { config: { role: 'admin' }, schema: { tags: ['scripts'], summary: 'Remove a library script', params: Type.Object({ name: Name }, { additionalProperties: false }), response: { 204: Type.Null(), ...errors } } },
      async (req, reply) => {
        await scripts.delete(req.params.name);
        return reply.status(204).send(null);
      },
    );
    app.get(
      '/api/v1/machines/:machine/scripts',
      {
        schema: {
          tags: ['scripts'],
          summary: "The machine's script results, newest first",
          params: MachineParams,
          querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }, { additionalProperties: false }),
          response: { 200: Type.Object({ items: Type.Array(ScriptRecordSchema) }), ...errors },
        },
      },
      async (req) => {
        const m = await s.inventory.get(req.params.machine);
        return { items: await scripts.results(m.id, req.query.limit) };
      },
    );
    app.get(
      '/api/v1/machines/:machine/scripts/:result/files/:file',
      {
        schema: {
          tags: ['scripts'],
          summary: 'A file a script left in $PLINTH_OUTPUT_DIR (its first 256 KiB)',
          params: Type.Object({ machine: Type.String(), result: Type.Integer({ minimum: 1 }), file: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$' }) }, { additionalProperties: false }),
        },
      },
      async (req, reply) => {
        const m = await s.inventory.get(req.params.machine);
        const bytes = await scripts.file(m.id, req.params.result, req.params.file);
        return reply.type('application/octet-stream').header('content-disposition', `attachment; filename="${req.params.file}"`).send(bytes);
      },
    );
  };
}
