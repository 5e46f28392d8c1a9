import { Type } from 'typebox';
import type { App } from '../context.js';
import { ErrorResponse, Limit } from '../schemas.js';
import type { PoolService } from '../../profiles/pool-service.js';
import { ApplyResult, PoolEntrySchema, PoolInput, PoolName, PoolSchema } from '../../profiles/schemas.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 413: ErrorResponse };
const Params = Type.Object({ pool: PoolName }, { additionalProperties: false });
const DOCUMENT_LIMIT = 64 * 1024 * 1024;

/** Pools: eDeploy's CMDB, entries handed to matched machines (docs/matching.md). */
export function poolRoutes(pools: PoolService) {
  return async (app: App): Promise<void> => {
    app.get(
      '/api/v1/pools',
      { schema: { tags: ['pools'], summary: 'Every pool with its entry counts', response: { 200: Type.Object({ items: Type.Array(PoolSchema) }), ...errors } } },
      async () => ({ items: await pools.listPools() }),
    );

    app.post(
      '/api/v1/pools/apply',
      {
        bodyLimit: DOCUMENT_LIMIT,
        schema: {
          tags: ['pools'],
          summary: 'Create or replace pools by name, in one transaction; entries held by machines cannot change',
          body: Type.Object({ pools: Type.Array(PoolInput, { maxItems: 1000 }) }, { additionalProperties: false }),
          response: { 200: ApplyResult, ...errors },
        },
      },
      async (req) => {
        const r = await pools.apply(req.body.pools);
        req.log.info({ pools: r.pools.map((p) => `${p.name}:${p.outcome}`), by: req.principal?.name }, 'pools applied');
        return r;
      },
    );

    app.get(
      '/api/v1/pools/:pool',
      { schema: { tags: ['pools'], summary: 'One pool', params: Params, response: { 200: PoolSchema, ...errors } } },
      async (req) => pools.getPool(req.params.pool),
    );

    app.get(
      '/api/v1/pools/:pool/entries',
      {
        schema: {
          tags: ['pools'],
          summary: "A pool's entries in order, with the machine holding each",
          params: Params,
          querystring: Type.Object({ limit: Type.Optional(Limit), cursor: Type.Optional(Type.String({ pattern: '^\\d{1,9}$' })) }, { additionalProperties: false }),
          response: { 200: Type.Object({ items: Type.Array(PoolEntrySchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }), ...errors },
        },
      },
      async (req) => {
        const q = req.query;
        return pools.listEntries(req.params.pool, { limit: q.limit ?? 100, ...(q.cursor !== undefined ? { after: Number(q.cursor) } : {}) });
      },
    );

    app.put(
      '/api/v1/pools/:pool',
      {
        bodyLimit: DOCUMENT_LIMIT,
        schema: { tags: ['pools'], summary: 'Create or replace one pool', params: Params, body: PoolInput, response: { 200: PoolSchema, 201: PoolSchema, ...errors } },
      },
      async (req, reply) => {
        const r = await pools.putPool(req.params.pool, req.body);
        return reply.status(r.outcome === 'created' ? 201 : 200).send(r.pool);
      },
    );

    app.delete(
      '/api/v1/pools/:pool',
      {
        schema: {
          tags: ['pools'],
          summary: 'Delete a pool no profile uses (refused while machines hold entries, unless force)',
          params: Params,
          querystring: Type.Object({ force: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
          response: { 204: Type.Null(), ...errors },
        },
      },
      async (req, reply) => {
        const p = await pools.deletePool(req.params.pool, { force: req.query.force ?? false });
        req.log.info({ pool: p.name, by: req.principal?.name }, 'pool deleted');
        return reply.status(204).send(null);
      },
    );
  };
}
