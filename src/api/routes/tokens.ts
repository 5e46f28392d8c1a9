import { Type } from 'typebox';
import type { App, AppServices } from '../context.js';
import { ErrorResponse, TokenCreate, TokenSchema } from '../schemas.js';
import type { Role } from '../../auth/tokens.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse };

export async function tokenRoutes(app: App, s: AppServices): Promise<void> {
  app.get(
    '/api/v1/tokens',
    {
      config: { role: 'admin' },
      schema: { tags: ['tokens'], summary: 'List API tokens (never their secrets)', response: { 200: Type.Object({ items: Type.Array(TokenSchema) }), ...errors } },
    },
    async () => ({ items: await s.tokens.list() }),
  );

  app.post(
    '/api/v1/tokens',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['tokens'],
        summary: 'Create a token; its secret is shown once, in this response',
        body: TokenCreate,
        response: { 201: Type.Object({ token: Type.String(), record: TokenSchema }), ...errors },
      },
    },
    async (req, reply) => {
      const body = req.body;
      const created = await s.tokens.create({ name: body.name, role: body.role as Role, expiresAt: body.expiresAt ?? null }, req.principal?.name ?? null);
      req.log.info({ token: body.name, role: body.role, by: req.principal?.name }, 'token created');
      return reply.status(201).send(created);
    },
  );

  app.delete(
    '/api/v1/tokens/:token',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['tokens'],
        summary: 'Revoke a token (by id or name)',
        params: Type.Object({ token: Type.String() }, { additionalProperties: false }),
        response: { 200: TokenSchema, ...errors },
      },
    },
    async (req) => {
      const t = await s.tokens.revoke(req.params.token);
      req.log.info({ token: t.name, by: req.principal?.name }, 'token revoked');
      return t;
    },
  );
}
