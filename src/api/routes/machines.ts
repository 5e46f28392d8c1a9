import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { AppServices } from '../context.js';
import { operatorActor } from '../context.js';
import {
  ActionBody,
  ActionParams,
  ActionResult,
  ErrorResponse,
  EventSchema,
  MachineCreate,
  MachineListQuery,
  MachineParams,
  MachinePatch,
  MachineSchema,
  Page,
  PageQuery,
  RunSchema,
  BootAttemptSchema,
  type ActionBodyType,
  type MachineCreateBody,
  type MachinePatchBody,
} from '../schemas.js';
import { allowedActions } from '../../lifecycle/states.js';
import { listEvents } from '../../inventory/events.js';
import { getRun, listRuns } from '../../runs/runs.js';
import type { DeployRequest } from '../../deploy/service.js';
import { readTrace } from '../../runs/trace.js';
import { decodeCursor, pageOf } from '../../core/pagination.js';
import type { Machine } from '../../inventory/machine.js';
import { validation } from '../../core/errors.js';
import type { MachineFilter } from '../../inventory/machine-rows.js';

export const presentMachine = (m: Machine) => ({ ...m, allowedActions: allowedActions(m.state) });

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse };

const DEPLOY_FIELDS = ['image', 'imageUrl', 'method', 'sshKeys', 'rootDeviceHints', 'reuseRun', 'installer'] as const;

function validateActionBody(action: string, body: ActionBodyType): void {
  for (const f of DEPLOY_FIELDS) {
    if (body[f] !== undefined && !['deploy', 'redeploy', 'retry'].includes(action)) throw validation(f, `only applies to deploy, redeploy and retry, not ${action}`);
  }
  if (body.wipe !== undefined) {
    if (action !== 'release' && action !== 'wipe') throw validation('wipe', `only applies to release and wipe, not ${action}`);
    if (action === 'wipe' && body.wipe === 'none') throw validation('wipe', 'a wipe must be quick or full');
  }
}

export async function machineRoutes(app: FastifyInstance, s: AppServices): Promise<void> {
  app.get(
    '/api/v1/machines',
    {
      schema: {
        tags: ['machines'],
        summary: 'List machines (filtered, paginated by name); facts only with include=facts',
        querystring: MachineListQuery,
        response: { 200: Page(MachineSchema), ...errors },
      },
    },
    async (req) => {
      const q = req.query as {
        state?: string[];
        tag?: string[];
        owner?: string;
        q?: string;
        maintenance?: boolean;
        include?: string[];
        limit?: number;
        cursor?: string;
      };
      const filter: MachineFilter = {};
      if (q.state) filter.states = q.state;
      if (q.tag) {
        filter.tags = q.tag.map((t) => {
          const i = t.indexOf('=');
          return i < 0 ? { key: t } : { key: t.slice(0, i), value: t.slice(i + 1) };
        });
      }
      if (q.owner !== undefined) filter.owner = q.owner;
      if (q.q !== undefined) filter.q = q.q;
      if (q.maintenance !== undefined) filter.maintenance = q.maintenance;
      const page = await s.inventory.list(filter, {
        limit: q.limit ?? 100,
        withFacts: q.include?.includes('facts') ?? false,
        ...(q.cursor ? { cursor: q.cursor } : {}),
      });
      return { items: page.items.map(presentMachine), nextCursor: page.nextCursor };
    },
  );

  app.post(
    '/api/v1/machines',
    {
      schema: { tags: ['machines'], summary: 'Enroll a machine', body: MachineCreate, response: { 201: MachineSchema, ...errors } },
    },
    async (req, reply) => {
      const body = req.body as MachineCreateBody;
      const m = await s.inventory.create(body, operatorActor(req.principal));
      req.log.info({ machine: m.name, id: m.id, by: req.principal?.name }, 'machine enrolled');
      return reply.status(201).send(presentMachine(m));
    },
  );

  app.get(
    '/api/v1/machines/:machine',
    { schema: { tags: ['machines'], summary: 'One machine, with its facts', params: MachineParams, response: { 200: MachineSchema, ...errors } } },
    async (req) => presentMachine(await s.inventory.get((req.params as { machine: string }).machine)),
  );

  app.patch(
    '/api/v1/machines/:machine',
    {
      schema: {
        tags: ['machines'],
        summary: 'Change name, identity, tags, owner, maintenance, protection or provider',
        params: MachineParams,
        body: MachinePatch,
        response: { 200: MachineSchema, ...errors },
      },
    },
    async (req) => {
      const m = await s.inventory.update((req.params as { machine: string }).machine, req.body as MachinePatchBody, operatorActor(req.principal));
      return presentMachine(m);
    },
  );

  app.delete(
    '/api/v1/machines/:machine',
    {
      schema: { tags: ['machines'], summary: 'Delete a machine and its history', params: MachineParams, response: { 204: Type.Null(), ...errors } },
    },
    async (req, reply) => {
      const m = await s.inventory.delete((req.params as { machine: string }).machine);
      req.log.info({ machine: m.name, id: m.id, by: req.principal?.name }, 'machine deleted');
      return reply.status(204).send();
    },
  );

  app.post(
    '/api/v1/machines/:machine/actions/:action',
    {
      schema: {
        tags: ['machines'],
        summary: 'Perform a lifecycle action (inspect, deploy, redeploy, release, wipe, retire, unretire, retry, abort)',
        params: ActionParams,
        body: ActionBody,
        response: { 200: ActionResult, ...errors },
      },
      // An action needs no body; an absent one means no options.
      preValidation: async (req) => {
        req.body ??= {};
      },
    },
    async (req) => {
      const { machine, action } = req.params as { machine: string; action: string };
      const body = (req.body ?? {}) as ActionBodyType;
      validateActionBody(action, body);
      const m = await s.inventory.get(machine);
      const isDeploy = action === 'deploy' || action === 'redeploy' || (action === 'retry' && m.state === 'deploy-failed');
      if (isDeploy) {
        const { reason, wipe: _wipe, ...deployRequest } = body;
        const r = await s.deploy.start(m.id, action as 'deploy' | 'redeploy' | 'retry', deployRequest as DeployRequest, operatorActor(req.principal), reason ?? null);
        req.log.info({ machine: r.machine.name, action, from: r.from, to: r.machine.state, by: req.principal?.name }, 'transition');
        return { machine: presentMachine(r.machine), run: r.run ?? (r.machine.currentRunId ? await getRun(s.store.db, r.machine.currentRunId) : null) };
      }
      const params: Record<string, unknown> = {};
      if (body.wipe !== undefined) params.wipe = body.wipe;
      if (action === 'wipe' && params.wipe === undefined) params.wipe = 'quick';
      const r = await s.engine.act(machine, action, {
        actor: operatorActor(req.principal),
        reason: body.reason ?? null,
        params,
        ...(action === 'abort' ? { error: { code: 'aborted', message: body.reason ?? 'aborted by the operator' } } : {}),
      });
      req.log.info({ machine: r.machine.name, action, from: r.from, to: r.machine.state, by: req.principal?.name }, 'transition');
      return { machine: presentMachine(r.machine), run: r.run };
    },
  );

  app.get(
    '/api/v1/machines/:machine/events',
    {
      schema: {
        tags: ['machines'],
        summary: 'The machine history, oldest first',
        params: MachineParams,
        querystring: PageQuery,
        response: { 200: Page(EventSchema), ...errors },
      },
    },
    async (req) => {
      const m = await s.inventory.get((req.params as { machine: string }).machine);
      const q = req.query as { limit?: number; cursor?: string };
      const limit = q.limit ?? 100;
      let after: number | undefined;
      if (q.cursor) {
        after = Number(decodeCursor(q.cursor));
        if (!Number.isInteger(after)) throw validation('cursor', 'is not a cursor this API returned');
      }
      const rows = await listEvents(s.store.db, m.id, { limit: limit + 1, ...(after !== undefined ? { after } : {}) });
      return pageOf(rows, limit, (e) => String(e.id));
    },
  );

  app.get(
    '/api/v1/machines/:machine/trace',
    {
      schema: {
        tags: ['machines'],
        summary: 'The boot trace: the newest boot attempts, each with every stage the boot service saw',
        params: MachineParams,
        querystring: Type.Object({ attempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 10 })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ machine: Type.String(), lastStage: Type.Union([Type.String(), Type.Null()]), attempts: Type.Array(BootAttemptSchema) }), ...errors },
      },
    },
    async (req) => {
      const m = await s.inventory.get((req.params as { machine: string }).machine);
      const { attempts } = req.query as { attempts?: number };
      return { machine: m.name, lastStage: m.lastStage, attempts: await readTrace(s.store.db, m.id, attempts ?? 10) };
    },
  );

  app.get(
    '/api/v1/machines/:machine/runs',
    {
      schema: {
        tags: ['runs'],
        summary: 'Runs of a machine, newest first',
        params: MachineParams,
        querystring: PageQuery,
        response: { 200: Page(RunSchema), ...errors },
      },
    },
    async (req) => {
      const m = await s.inventory.get((req.params as { machine: string }).machine);
      const q = req.query as { limit?: number; cursor?: string };
      const limit = q.limit ?? 100;
      let before: { createdAt: string; id: string } | undefined;
      if (q.cursor) {
        const [createdAt, id] = decodeCursor(q.cursor).split('|');
        if (!createdAt || !id) throw validation('cursor', 'is not a cursor this API returned');
        before = { createdAt, id };
      }
      const rows = await listRuns(s.store.db, m.id, { limit: limit + 1, ...(before !== undefined ? { before } : {}) });
      return pageOf(rows, limit, (r) => `${r.createdAt}|${r.id}`);
    },
  );
}
