import { Type } from 'typebox';
import type { App, AppServices } from '../context.js';
import { ErrorResponse, StringEnum } from '../schemas.js';
import { TEMPLATE_KINDS } from '../../templates/index.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse };
const Override = Type.Object({
  id: Type.String(),
  scope: StringEnum(['site', 'profile', 'machine']),
  owner: Type.Union([Type.String(), Type.Null()]),
  kind: Type.String(),
  name: Type.String(),
  body: Type.String(),
  updatedAt: Type.String(),
});
const ScopeQuery = Type.Object(
  {
    scope: Type.Optional(StringEnum(['site', 'profile', 'machine'], { default: 'site' })),
    owner: Type.Optional(Type.String({ maxLength: 128, description: 'the profile name or machine name/id for profile and machine scopes' })),
  },
  { additionalProperties: false },
);
const KindName = Type.Object({ kind: StringEnum([...TEMPLATE_KINDS]), name: Type.String({ maxLength: 64 }) }, { additionalProperties: false });

export async function templateRoutes(app: App, s: AppServices): Promise<void> {
  app.get(
    '/api/v1/templates',
    {
      schema: {
        tags: ['templates'],
        summary: 'Stored template and snippet overrides (built-ins are in docs/templates.md)',
        querystring: Type.Object({ kind: Type.Optional(StringEnum([...TEMPLATE_KINDS])) }, { additionalProperties: false }),
        response: { 200: Type.Object({ items: Type.Array(Override) }), ...errors },
      },
    },
    async (req) => ({ items: await s.templates.list(req.query) }),
  );

  app.put(
    '/api/v1/templates/:kind/:name',
    {
      schema: {
        tags: ['templates'],
        summary: 'Override a template or snippet for the site, a profile or a machine (checked for syntax before it is stored)',
        params: KindName,
        querystring: ScopeQuery,
        body: Type.Object({ body: Type.String({ maxLength: 262_144 }) }, { additionalProperties: false }),
        response: { 200: Override, ...errors },
      },
    },
    async (req) => {
      const { kind, name } = req.params;
      return s.templates.put(await s.templates.scopeOf(req.query), kind, name, req.body.body);
    },
  );

  app.delete(
    '/api/v1/templates/:kind/:name',
    { schema: { tags: ['templates'], summary: 'Remove an override', params: KindName, querystring: ScopeQuery, response: { 204: Type.Null(), ...errors } } },
    async (req, reply) => {
      const { kind, name } = req.params;
      await s.templates.delete(await s.templates.scopeOf(req.query), kind, name);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/api/v1/templates/:kind/render',
    {
      schema: {
        tags: ['templates'],
        summary: 'Preview what a deploy of a machine would receive (nothing is stored)',
        params: Type.Object({ kind: StringEnum([...TEMPLATE_KINDS]) }, { additionalProperties: false }),
        body: Type.Object({ machine: Type.String(), name: Type.Optional(Type.String({ maxLength: 64 })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ artifacts: Type.Record(Type.String(), Type.String()) }), ...errors },
      },
    },
    async (req) => {
      const { kind } = req.params;
      const body = req.body;
      return { artifacts: await s.deploy.preview(body.machine, kind, body.name ?? null) };
    },
  );
}
