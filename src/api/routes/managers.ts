import { Type } from 'typebox';
import type { App, AppServices } from '../context.js';
import { ErrorResponse } from '../schemas.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse };
const Site = Type.Object({ site: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', maxLength: 63 }) }, { additionalProperties: false });

/**
 * The API remote managers dial out to (`plinth manager`): claim the provider jobs of their
 * site — with the appliance's credentials, so these routes need an admin token — and report
 * results. A claim is also the manager's heartbeat.
 */
export async function managerRoutes(app: App, s: AppServices): Promise<void> {
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
      const { site } = req.params;
      const body = req.body;
      // A manager that hung up must not be handed jobs it will never see.
      let gone = false;
      reply.raw.on('close', () => (gone = !reply.raw.writableFinished));
      const until = Date.now() + (body.waitSeconds ?? 20) * 1000;
      for (;;) {
        if (gone || closing) return { jobs: [], leaseSeconds: 0 };
        await s.power.managerSeen(site, body.version, req.ip);
        const jobs = await s.power.claimForSite(site, body.max);
        if (jobs.length || Date.now() >= until) {
          if (jobs.length) req.log.info({ site, jobs: jobs.map((j) => j.id) }, 'jobs handed to manager');
          return { jobs, leaseSeconds: Math.floor(s.power.leaseMilliseconds / 1000) };
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
      const { site, job } = req.params;
      const body = req.body;
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
    async () => ({ items: await s.power.managers() }),
  );
}
