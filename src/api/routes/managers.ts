import { Type } from 'typebox';
import type { App, AppServices } from '../context.js';
import { ErrorResponse } from '../schemas.js';
import type { SendFile } from '../send-file.js';
import type { SiteCaches } from '../../power/site-caches.js';
import { SHA256_PATTERN, SiteCacheAnswerSchema, SiteCacheFetchSchema, SiteCacheReportSchema, SiteCacheRunAnswerSchema } from '../../protocol/site-cache.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse };
const Site = Type.Object({ site: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', maxLength: 63 }) }, { additionalProperties: false });

const CacheStatus = Type.Union([
  Type.Null(),
  Type.Object({
    url: Type.String(),
    lastReport: Type.String(),
    inUse: Type.Boolean({ description: "whether machines of the site are sent to the cache now (its manager reported within the last minute)" }),
    report: Type.Union([Type.Null(), SiteCacheReportSchema]),
  }),
]);

/**
 * The API remote managers dial out to (`plinth manager`): claim the provider jobs of their
 * site — with the appliance's credentials, so these routes need an admin token — and report
 * results. A claim is also the manager's heartbeat. A manager with a site cache reports it,
 * fetches files by sha256 and asks whether a run may still fetch (docs/mass-deploy.md).
 */
export const managerRoutes = (deps: { siteCaches: SiteCaches; sendFile: SendFile }) => async (app: App, s: AppServices): Promise<void> => {
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
        response: {
          200: Type.Object({ items: Type.Array(Type.Object({ site: Type.String(), lastSeen: Type.String(), version: Type.Union([Type.String(), Type.Null()]), cache: CacheStatus })) }),
          ...errors,
        },
      },
    },
    async () => {
      const caches = await deps.siteCaches.statuses();
      return { items: (await s.power.managers()).map((m) => ({ ...m, cache: caches.get(m.site) ?? null })) };
    },
  );

  app.post(
    '/api/v1/managers/:site/cache',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['managers'],
        summary: "A manager reports its site cache (URL, figures); the answer is the key the site's cache URLs are signed with",
        params: Site,
        body: SiteCacheReportSchema,
        response: { 200: SiteCacheAnswerSchema, ...errors },
      },
    },
    async (req) => deps.siteCaches.report(req.params.site, req.body, req.ip),
  );

  app.get(
    '/api/v1/managers/:site/files/:sha256',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['managers'],
        summary: "A site cache fetches a file the controller serves (an image, the installer's kernel or initramfs, a file beside an image) by its sha256 (Range supported)",
        params: Type.Object({ site: Site.properties.site, sha256: Type.String({ pattern: SHA256_PATTERN }) }, { additionalProperties: false }),
      },
    },
    async (req, reply) => {
      const { path } = await deps.siteCaches.file(req.params.sha256);
      req.log.info({ site: req.params.site, sha256: req.params.sha256 }, 'file sent to a site cache');
      return deps.sendFile(reply.type('application/octet-stream').header('etag', `"${req.params.sha256}"`), path);
    },
  );

  app.get(
    '/api/v1/managers/:site/runs/:run',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['managers'],
        summary: "A site cache asks whether a run is still under way on one of the site's machines (only then does it serve the run's files)",
        params: Type.Object({ site: Site.properties.site, run: Type.String({ maxLength: 64 }) }, { additionalProperties: false }),
        response: { 200: SiteCacheRunAnswerSchema, ...errors },
      },
    },
    async (req) => ({ active: await deps.siteCaches.runActive(req.params.site, req.params.run) }),
  );

  app.post(
    '/api/v1/managers/:site/fetches',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['managers'],
        summary: "A site cache tells what it served a run's machine, for the machine's boot trace",
        params: Site,
        body: SiteCacheFetchSchema,
        response: { 200: Type.Object({}), ...errors },
      },
    },
    async (req) => {
      await deps.siteCaches.recordFetch(req.params.site, req.body);
      return {};
    },
  );
};
