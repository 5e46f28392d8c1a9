import { Type } from 'typebox';
import type { App, AppServices } from '../context.js';
import { operatorActor } from '../context.js';
import {
  ActionBody,
  ActionParams,
  ActionResult,
  AllocateBody,
  ErrorResponse,
  EventSchema,
  MachineBulkCreate,
  MachineCreate,
  MachineImportBody,
  MachineImportResult,
  MachineCounts,
  MachineCountsQuery,
  type MachineCountsQueryType,
  MachineListQuery,
  MachineParams,
  MachinePatch,
  MachineSchema,
  Page,
  PageQuery,
  RunSchema,
  BootAttemptSchema,
  InstallerAccessSchema,
} from '../schemas.js';
import { allowedActions } from '../../lifecycle/states.js';
import type { Machine } from '../../inventory/machine.js';
import type { MachineFilter } from '../../inventory/machine-rows.js';

/** The inventory filter a list or counts query asks for. */
function filterOf(q: MachineCountsQueryType): MachineFilter {
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
  if (q.power !== undefined) filter.power = q.power;
  if (q.profile !== undefined) filter.profile = q.profile;
  if (q.role !== undefined) filter.role = q.role;
  if (q.version !== undefined) filter.version = q.version;
  return filter;
}

export const presentMachine = (m: Machine) => ({ ...m, allowedActions: allowedActions(m.state) });

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse };

export async function machineRoutes(app: App, s: AppServices): Promise<void> {
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
      const q = req.query;
      const filter = filterOf(q);
      const page = await s.inventory.list(filter, {
        limit: q.limit ?? 100,
        withFacts: q.include?.includes('facts') ?? false,
        ...(q.cursor ? { cursor: q.cursor } : {}),
      });
      return { items: page.items.map(presentMachine), nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/api/v1/machine-counts',
    {
      schema: {
        tags: ['machines'],
        summary: 'How many machines a filter matches, in all and per provision state (same filter as the list)',
        querystring: MachineCountsQuery,
        response: { 200: MachineCounts, ...errors },
      },
    },
    async (req) => s.inventory.counts(filterOf(req.query)),
  );

  app.post(
    '/api/v1/machines',
    {
      schema: { tags: ['machines'], summary: 'Enroll a machine', body: MachineCreate, response: { 201: MachineSchema, ...errors } },
    },
    async (req, reply) => {
      const body = req.body;
      const m = await s.inventory.create(body, operatorActor(req.principal));
      req.log.info({ machine: m.name, id: m.id, by: req.principal?.name }, 'machine enrolled');
      return reply.status(201).send(presentMachine(m));
    },
  );

  app.post(
    '/api/v1/machines/bulk',
    {
      schema: {
        tags: ['machines'],
        summary: 'Enroll many machines in one transaction: all or none (an error names the entry, machines[3].identity.macs)',
        body: MachineBulkCreate,
        response: { 201: Type.Object({ machines: Type.Array(MachineSchema) }), ...errors },
      },
    },
    async (req, reply) => {
      const ms = await s.inventory.createMany(req.body.machines, operatorActor(req.principal));
      req.log.info({ machines: ms.length, by: req.principal?.name }, 'machines enrolled');
      return reply.status(201).send({ machines: ms.map(presentMachine) });
    },
  );

  app.post(
    '/api/v1/machines/allocate',
    {
      schema: {
        tags: ['machines'],
        summary: 'Allocate available, unowned machines that meet the constraints to an owner: all `count` of them or none (409 says what was short)',
        body: AllocateBody,
        response: { 200: Type.Object({ owner: Type.String(), machines: Type.Array(MachineSchema) }), ...errors },
      },
    },
    async (req) => {
      const { owner, ...constraints } = req.body;
      const r = await s.allocator.allocate({ ...constraints, owner: owner ?? req.principal?.name ?? 'anonymous' }, operatorActor(req.principal));
      req.log.info({ owner: r.owner, machines: r.machines.map((m) => m.name), by: req.principal?.name }, 'machines allocated');
      return { owner: r.owner, machines: r.machines.map(presentMachine) };
    },
  );

  app.post(
    '/api/v1/machines/import',
    {
      // Admin: the document may carry BMC credentials, which become appliances.
      config: { role: 'admin' },
      schema: {
        tags: ['machines'],
        summary: "Import a static inventory: Plinth's machines document or TripleO's nodes.json, all or nothing; dryRun gives the plan",
        body: MachineImportBody,
        response: { 200: MachineImportResult, ...errors },
      },
    },
    async (req) => {
      const r = await s.importer.import(req.body.document, { dryRun: req.body.dryRun ?? false, actor: operatorActor(req.principal) });
      if (!r.dryRun) req.log.info({ format: r.format, created: r.created, updated: r.updated, unchanged: r.unchanged, by: req.principal?.name }, 'machines imported');
      return r;
    },
  );

  app.get(
    '/api/v1/machines/:machine',
    { schema: { tags: ['machines'], summary: 'One machine, with its facts', params: MachineParams, response: { 200: MachineSchema, ...errors } } },
    async (req) => presentMachine(await s.inventory.get(req.params.machine)),
  );

  app.patch(
    '/api/v1/machines/:machine',
    {
      schema: {
        tags: ['machines'],
        summary: 'Change name, identity, tags, owner, maintenance, protection, provider or boot address',
        params: MachineParams,
        body: MachinePatch,
        response: { 200: MachineSchema, ...errors },
      },
    },
    async (req) => {
      const m = await s.inventory.update(req.params.machine, req.body, operatorActor(req.principal));
      return presentMachine(m);
    },
  );

  app.delete(
    '/api/v1/machines/:machine',
    {
      schema: { tags: ['machines'], summary: 'Delete a machine and its history', params: MachineParams, response: { 204: Type.Null(), ...errors } },
    },
    async (req, reply) => {
      const m = await s.inventory.delete(req.params.machine);
      req.log.info({ machine: m.name, id: m.id, by: req.principal?.name }, 'machine deleted');
      return reply.status(204).send(null);
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
      const { machine, action } = req.params;
      const r = await s.actions.perform(machine, action, req.body ?? {}, operatorActor(req.principal));
      req.log.info({ machine: r.machine.name, action, from: r.from, to: r.machine.state, by: req.principal?.name }, 'transition');
      return { machine: presentMachine(r.machine), run: r.run };
    },
  );

  app.get(
    '/api/v1/machines/:machine/installer',
    {
      schema: {
        tags: ['machines'],
        summary: 'How to reach a machine held in the installer or rescue over SSH: address, port, host keys, known_hosts lines',
        params: MachineParams,
        response: { 200: InstallerAccessSchema, ...errors },
      },
    },
    async (req) => s.holds.access(req.params.machine),
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
      const m = await s.inventory.get(req.params.machine);
      return s.engine.history(m.id, { limit: req.query.limit ?? 100, cursor: req.query.cursor });
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
      const m = await s.inventory.get(req.params.machine);
      const { attempts } = req.query;
      return { machine: m.name, lastStage: m.lastStage, attempts: await s.runs.trace(m.id, attempts ?? 10) };
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
      const m = await s.inventory.get(req.params.machine);
      return s.runs.ofMachine(m.id, { limit: req.query.limit ?? 100, cursor: req.query.cursor });
    },
  );
}
