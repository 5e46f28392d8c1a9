import { Type } from 'typebox';
import type { App, AppServices } from '../context.js';
import { DeliverySchema, ErrorResponse, WebhookSchema } from '../schemas.js';
import { DELIVERY_STATUSES } from '../../webhooks/service.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse };
const admin = { role: 'admin' as const };

const WebhookParams = Type.Object({ webhook: Type.String({ maxLength: 64 }) }, { additionalProperties: false });

/** Webhooks (admin only: a webhook sends every event it matches to a URL of the admin's choosing). */
export async function webhookRoutes(app: App, s: AppServices): Promise<void> {
  app.post(
    '/api/v1/webhooks',
    {
      config: admin,
      schema: {
        tags: ['webhooks'],
        summary: 'Add a webhook; its secret (generated when not given) is shown once, in this response',
        body: Type.Object(
          {
            url: Type.String({ minLength: 1, maxLength: 2048 }),
            events: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 64, description: 'event type prefixes (default: all)' })),
            secret: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'whsec_ and base64 (Standard Webhooks)' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ ...WebhookSchema.properties, secret: Type.String() }), ...errors },
      },
    },
    async (req, reply) => {
      const w = await s.webhooks.create(req.body, req.principal?.name ?? null);
      req.log.info({ webhook: w.id, url: w.url, events: w.events, by: req.principal?.name }, 'webhook added');
      return reply.status(201).send(w);
    },
  );

  app.get(
    '/api/v1/webhooks',
    { config: admin, schema: { tags: ['webhooks'], summary: 'List webhooks (never their secrets)', response: { 200: Type.Object({ items: Type.Array(WebhookSchema) }), ...errors } } },
    async () => ({ items: await s.webhooks.list() }),
  );

  app.delete(
    '/api/v1/webhooks/:webhook',
    { config: admin, schema: { tags: ['webhooks'], summary: 'Remove a webhook and its deliveries', params: WebhookParams, response: { 204: Type.Null(), ...errors } } },
    async (req, reply) => {
      await s.webhooks.remove(req.params.webhook, req.principal?.name ?? null);
      req.log.info({ webhook: req.params.webhook, by: req.principal?.name }, 'webhook removed');
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/api/v1/webhooks/:webhook/deliveries',
    {
      config: admin,
      schema: {
        tags: ['webhooks'],
        summary: "A webhook's deliveries, newest event first",
        params: WebhookParams,
        querystring: Type.Object(
          { status: Type.Optional(Type.Enum(DELIVERY_STATUSES)), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(DeliverySchema) }), ...errors },
      },
    },
    async (req) => ({ items: await s.webhooks.deliveries(req.params.webhook, { status: req.query.status, limit: req.query.limit ?? 100 }) }),
  );

  app.post(
    '/api/v1/webhooks/:webhook/deliveries/:delivery/redeliver',
    {
      config: admin,
      schema: {
        tags: ['webhooks'],
        summary: 'Send a delivery again now (same webhook-id), whatever its status',
        params: Type.Object({ webhook: Type.String({ maxLength: 64 }), delivery: Type.String({ maxLength: 64 }) }, { additionalProperties: false }),
        response: { 200: DeliverySchema, ...errors },
      },
    },
    async (req) => s.webhooks.redeliver(req.params.webhook, req.params.delivery),
  );
}
