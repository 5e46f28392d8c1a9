import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { AppServices } from '../context.js';
import { operatorActor } from '../context.js';
import { ErrorResponse, JobSchema, MachineParams, MachineSchema } from '../schemas.js';
import { presentMachine } from './machines.js';
import { PlinthError } from '../../core/errors.js';
import { getJob, type ProviderJob } from '../../power/jobs.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 502: ErrorResponse, 504: ErrorResponse };
const PowerResult = Type.Object({ job: JobSchema, machine: MachineSchema });

/** Turns a failed or unfinished job into the error an API caller should see. */
function raiseUnlessDone(job: ProviderJob, what: string): void {
  if (job.status === 'failed') {
    const e = job.error as { failure?: string; message?: string } | null;
    throw new PlinthError(e?.failure === 'unsupported' ? 'unsupported' : 'unavailable', `${what} failed: ${e?.message ?? 'unknown error'}`, {
      status: e?.failure === 'unsupported' ? 422 : 502,
      details: { job: job.id, failure: e?.failure },
    });
  }
  if (job.status !== 'succeeded') {
    throw new PlinthError('timeout', `${what} is still ${job.status} (job ${job.id}); see GET /api/v1/jobs/${job.id}`, { details: { job: job.id } });
  }
}

export async function powerRoutes(app: FastifyInstance, s: AppServices): Promise<void> {
  app.post(
    '/api/v1/machines/:machine/power',
    {
      schema: {
        tags: ['power'],
        summary: 'Switch a machine on, off (hard or soft) or power-cycle it through its appliance, and wait for the result',
        params: MachineParams,
        body: Type.Object(
          {
            action: Type.String({ enum: ['on', 'off', 'soft-off', 'cycle'] }),
            waitSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 600, default: 60 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: PowerResult, ...errors },
      },
    },
    async (req) => {
      const { machine } = req.params as { machine: string };
      const body = req.body as { action: 'on' | 'off' | 'soft-off' | 'cycle'; waitSeconds?: number };
      const target = body.action === 'cycle' ? 'reboot' : body.action;
      const job = await s.power.enqueueForMachine(machine, (m) => ({ kind: 'power', ref: m.provider.ref ?? '', target }), {
        actor: operatorActor(req.principal),
        event: `power-${body.action}`,
      });
      const done = await s.power.wait(job.id, (body.waitSeconds ?? 60) * 1000);
      raiseUnlessDone(done, `power ${body.action}`);
      return { job: done, machine: presentMachine(await s.inventory.get(machine)) };
    },
  );

  app.get(
    '/api/v1/machines/:machine/power',
    {
      schema: {
        tags: ['power'],
        summary: 'Read the power state from the appliance now',
        params: MachineParams,
        querystring: Type.Object({ waitSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 600, default: 60 })) }, { additionalProperties: false }),
        response: { 200: PowerResult, ...errors },
      },
    },
    async (req) => {
      const { machine } = req.params as { machine: string };
      const job = await s.power.enqueueForMachine(machine, (m) => ({ kind: 'status', ref: m.provider.ref ?? '' }));
      const done = await s.power.wait(job.id, ((req.query as { waitSeconds?: number }).waitSeconds ?? 60) * 1000);
      raiseUnlessDone(done, 'power status');
      return { job: done, machine: presentMachine(await s.inventory.get(machine)) };
    },
  );

  app.get(
    '/api/v1/jobs/:job',
    { schema: { tags: ['power'], summary: 'One provider job', params: Type.Object({ job: Type.String() }, { additionalProperties: false }), response: { 200: JobSchema, ...errors } } },
    async (req) => {
      const job = await getJob(s.store.db, (req.params as { job: string }).job);
      if (!job) throw new PlinthError('not_found', `job '${(req.params as { job: string }).job}' not found`);
      return job;
    },
  );
}
