import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { AppServices } from '../context.js';
import { ErrorResponse } from '../schemas.js';
import { iso, parseDuration } from '../../core/clock.js';
import { claimJobs } from '../../power/jobs.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse };
const Site = Type.Object({ site: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', maxLength: 63 }) }, { additionalProperties: false });

/**
 * The API remote managers dial out to (`plinth manager`): claim the provider jobs of their
 * site — with the appliance's credentials, so these routes need an admin token — and report
 * results. A claim is also the manager's heartbeat.
 */
export async function managerRoutes(app: FastifyInstance, s: AppServices): Promise<void> {
  const leaseMs = parseDuration(s.config.providers.lease);
  // Long polls end when the controller shuts down, so that in-flight requests finish promptly.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });

  app.post(
    '/api/v1/managers/:site/claim',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['managers'],
        summary: 'A manager asks for work: up to `max` jobs of its site, waiting up to `waitSeconds` for one',
        params: Site,
        body: Type.Object(
          {
            version: Type.String({ maxLength: 64 }),
            max: Type.Integer({ minimum: 1, maximum: 1000 }),
            waitSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 30, default: 20 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            jobs: Type.Array(
              Type.Object({
                id: Type.String(),
                spec: Type.Unknown(),
                appliance: Type.Object({ name: Type.String(), type: Type.String() }),
                endpoint: Type.Unknown({ description: 'address and credentials (decrypted) of the appliance' }),
              }),
            ),
            leaseSeconds: Type.Integer(),
          }),
          ...errors,
        },
      },
    },
    async (req, reply) => {
      const { site } = req.params as { site: string };
      const body = req.body as { version: string; max: number; waitSeconds?: number };
      // A manager that hung up must not be handed jobs it will never see.
      let gone = false;
      reply.raw.on('close', () => (gone = !reply.raw.writableFinished));
      const until = Date.now() + (body.waitSeconds ?? 20) * 1000;
      const seen = async () => {
        const now = iso(s.clock.now());
        const existing = await s.store.db.selectFrom('managers').select('site').where('site', '=', site).executeTakeFirst();
        if (existing) await s.store.db.updateTable('managers').set({ last_seen: now, version: body.version, address: req.ip }).where('site', '=', site).execute();
        else await s.store.db.insertInto('managers').values({ site, last_seen: now, version: body.version, address: req.ip }).execute().catch(() => undefined);
      };
      for (;;) {
        if (gone || closing) return { jobs: [], leaseSeconds: 0 };
        await seen();
        const jobs = await claimJobs(s.store, { site, claimer: `manager:${site}`, limit: body.max, leaseMs, now: s.clock.now() });
        if (jobs.length || Date.now() >= until) {
          const out = [];
          for (const j of jobs) {
            const { appliance, endpoint } = await s.appliances.endpoint(j.applianceId);
            out.push({ id: j.id, spec: j.spec, appliance: { name: appliance.name, type: appliance.type }, endpoint });
          }
          if (jobs.length) req.log.info({ site, jobs: jobs.map((j) => j.id) }, 'jobs handed to manager');
          return { jobs: out, leaseSeconds: Math.floor(leaseMs / 1000) };
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    },
  );

  app.post(
    '/api/v1/managers/:site/jobs/:job',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['managers'],
        summary: 'A manager reports the outcome of a job it claimed',
        params: Type.Object({ site: Type.String(), job: Type.String() }, { additionalProperties: false }),
        body: Type.Union([
          Type.Object({ status: Type.Literal('succeeded'), result: Type.Record(Type.String(), Type.Unknown()) }, { additionalProperties: false }),
          Type.Object(
            { status: Type.Literal('failed'), error: Type.Object({ failure: Type.String(), message: Type.String({ maxLength: 4096 }), step: Type.Optional(Type.String()) }, { additionalProperties: false }) },
            { additionalProperties: false },
          ),
        ]),
        response: { 200: Type.Object({ accepted: Type.Boolean({ description: 'false when the job was no longer this manager\'s (lease expired, done elsewhere)' }) }), ...errors },
      },
    },
    async (req) => {
      const { site, job } = req.params as { site: string; job: string };
      const body = req.body as { status: 'succeeded'; result: Record<string, unknown> } | { status: 'failed'; error: { failure: string; message: string; step?: string } };
      const accepted = await s.power.complete(job, `manager:${site}`, body.status === 'succeeded' ? { status: 'succeeded', result: body.result } : { status: 'failed', error: body.error });
      return { accepted };
    },
  );

  app.get(
    '/api/v1/managers',
    {
      schema: {
        tags: ['managers'],
        summary: 'Remote sites and when their manager was last seen',
        response: { 200: Type.Object({ items: Type.Array(Type.Object({ site: Type.String(), lastSeen: Type.String(), version: Type.Union([Type.String(), Type.Null()]) })) }), ...errors },
      },
    },
    async () => ({
      items: (await s.store.db.selectFrom('managers').selectAll().orderBy('site').execute()).map((m) => ({ site: m.site, lastSeen: m.last_seen, version: m.version })),
    }),
  );
}
