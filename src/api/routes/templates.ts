import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { AppServices } from '../context.js';
import { ErrorResponse } from '../schemas.js';
import { TEMPLATE_KINDS, type TemplateKind } from '../../templates/index.js';
import type { OverrideScope } from '../../deploy/template-store.js';
import { validation } from '../../core/errors.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse };
const Override = Type.Object({
  id: Type.String(),
  scope: Type.String({ enum: ['site', 'profile', 'machine'] }),
  owner: Type.Union([Type.String(), Type.Null()]),
  kind: Type.String(),
  name: Type.String(),
  body: Type.String(),
  updatedAt: Type.String(),
});
const ScopeQuery = Type.Object(
  {
    scope: Type.Optional(Type.String({ enum: ['site', 'profile', 'machine'], default: 'site' })),
    owner: Type.Optional(Type.String({ maxLength: 128, description: 'the profile name or machine name/id for profile and machine scopes' })),
  },
  { additionalProperties: false },
);
const KindName = Type.Object({ kind: Type.String({ enum: [...TEMPLATE_KINDS] }), name: Type.String({ maxLength: 64 }) }, { additionalProperties: false });

export async function templateRoutes(app: FastifyInstance, s: AppServices): Promise<void> {
  const scopeOf = async (q: { scope?: string; owner?: string }): Promise<OverrideScope> => {
    const scope = q.scope ?? 'site';
    if (scope === 'site') return { scope: 'site' };
    if (!q.owner) throw validation('owner', `is required for ${scope} overrides`);
    if (scope === 'profile') return { scope: 'profile', profile: q.owner };
    return { scope: 'machine', machineId: (await s.inventory.get(q.owner)).id };
  };

  app.get(
    '/api/v1/templates',
    {
      schema: {
        tags: ['templates'],
        summary: 'Stored template and snippet overrides (built-ins are in docs/templates.md)',
        querystring: Type.Object({ kind: Type.Optional(Type.String({ enum: [...TEMPLATE_KINDS] })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ items: Type.Array(Override) }), ...errors },
      },
    },
    async (req) => ({ items: await s.templates.list(req.query as { kind?: string }) }),
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
      const { kind, name } = req.params as { kind: string; name: string };
      return s.templates.put(await scopeOf(req.query as { scope?: string; owner?: string }), kind, name, (req.body as { body: string }).body);
    },
  );

  app.delete(
    '/api/v1/templates/:kind/:name',
    { schema: { tags: ['templates'], summary: 'Remove an override', params: KindName, querystring: ScopeQuery, response: { 204: Type.Null(), ...errors } } },
    async (req, reply) => {
      const { kind, name } = req.params as { kind: string; name: string };
      await s.templates.delete(await scopeOf(req.query as { scope?: string; owner?: string }), kind, name);
      return reply.status(204).send();
    },
  );

  app.post(
    '/api/v1/templates/:kind/render',
    {
      schema: {
        tags: ['templates'],
        summary: 'Preview what a deploy of a machine would receive (nothing is stored)',
        params: Type.Object({ kind: Type.String({ enum: [...TEMPLATE_KINDS] }) }, { additionalProperties: false }),
        body: Type.Object({ machine: Type.String(), name: Type.Optional(Type.String({ maxLength: 64 })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ artifacts: Type.Record(Type.String(), Type.String()) }), ...errors },
      },
    },
    async (req) => {
      const { kind } = req.params as { kind: TemplateKind };
      const body = req.body as { machine: string; name?: string };
      return { artifacts: await s.deploy.preview(body.machine, kind, body.name ?? null) };
    },
  );
}
