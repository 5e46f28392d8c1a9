import { Type } from 'typebox';
import type { App, AppServices } from '../context.js';
import { operatorActor } from '../context.js';
import { ApplianceCreate, ApplianceEventSchema, ApplianceMoveBody, ApplianceMoveResult, AppliancePatch, ApplianceSchema, ErrorResponse, JobSchema, MachineSchema, Page, PageQuery } from '../schemas.js';
import { presentMachine } from './machines.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 503: ErrorResponse, 504: ErrorResponse };
const Params = Type.Object({ appliance: Type.String() }, { additionalProperties: false });

export async function applianceRoutes(app: App, s: AppServices): Promise<void> {
  app.get(
    '/api/v1/appliances',
    { schema: { tags: ['appliances'], summary: 'BMCs, hypervisors and labs Plinth controls machines through', response: { 200: Type.Object({ items: Type.Array(ApplianceSchema) }), ...errors } } },
    async () => ({ items: await s.appliances.list() }),
  );

  app.post(
    '/api/v1/appliances',
    {
      config: { role: 'admin' },
      schema: { tags: ['appliances'], summary: 'Register an appliance; its password is stored encrypted and never returned', body: ApplianceCreate, response: { 201: ApplianceSchema, ...errors } },
    },
    async (req, reply) => {
      const a = await s.appliances.register(req.body);
      req.log.info({ appliance: a.name, type: a.type, by: req.principal?.name }, 'appliance registered');
      return reply.status(201).send(a);
    },
  );

  app.get(
    '/api/v1/appliances/:appliance',
    { schema: { tags: ['appliances'], summary: 'One appliance (never its password)', params: Params, response: { 200: ApplianceSchema, ...errors } } },
    async (req) => s.appliances.get(req.params.appliance),
  );

  app.patch(
    '/api/v1/appliances/:appliance',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['appliances'],
        summary: 'Change an appliance (a rotated password, a new address or certificate); its kept sessions and breaker are dropped and its health is unknown until the next call',
        params: Params,
        body: AppliancePatch,
        response: { 200: ApplianceSchema, ...errors },
      },
    },
    async (req) => {
      const a = await s.appliances.update(req.params.appliance, req.body, operatorActor(req.principal));
      req.log.info({ appliance: a.name, fields: Object.keys(req.body), by: req.principal?.name }, 'appliance updated');
      return a;
    },
  );

  app.post(
    '/api/v1/appliances/:appliance/check',
    {
      schema: {
        tags: ['appliances'],
        summary: 'Probe the appliance now (read its machines’ power, or list its systems) and record its health',
        params: Params,
        body: Type.Object({ waitSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 600, default: 60 })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ appliance: ApplianceSchema, job: JobSchema }), ...errors },
      },
      preValidation: async (req) => {
        req.body ??= {};
      },
    },
    async (req) => {
      const job = await s.power.probeAppliance(req.params.appliance, (req.body.waitSeconds ?? 60) * 1000);
      return { appliance: await s.appliances.get(req.params.appliance), job };
    },
  );

  app.get(
    '/api/v1/appliances/:appliance/events',
    {
      schema: {
        tags: ['appliances'],
        summary: "The appliance's history (health changes, updates, machines moved), oldest first",
        params: Params,
        querystring: PageQuery,
        response: { 200: Page(ApplianceEventSchema), ...errors },
      },
    },
    async (req) => s.appliances.events(req.params.appliance, { limit: req.query.limit ?? 100, cursor: req.query.cursor }),
  );

  app.post(
    '/api/v1/appliances/:appliance/move',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['appliances'],
        summary: 'Move machines (the named ones, or all) to another appliance; references must stay on its endpoint',
        params: Params,
        body: ApplianceMoveBody,
        response: {
          200: ApplianceMoveResult,
          ...errors,
        },
      },
    },
    async (req) => {
      const body = req.body;
      const r = await s.appliances.move(req.params.appliance, { to: body.to, ...(body.machines ? { machines: body.machines } : {}), ...(body.ref !== undefined ? { ref: body.ref } : {}), actor: operatorActor(req.principal) });
      req.log.info({ from: r.from, to: r.to, machines: r.machines.length, by: req.principal?.name }, 'machines moved');
      return r;
    },
  );

  app.delete(
    '/api/v1/appliances/:appliance',
    { config: { role: 'admin' }, schema: { tags: ['appliances'], summary: 'Delete an appliance that controls no machine', params: Params, response: { 204: Type.Null(), ...errors } } },
    async (req, reply) => {
      const a = await s.appliances.delete(req.params.appliance);
      req.log.info({ appliance: a.name, by: req.principal?.name }, 'appliance deleted');
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/api/v1/appliances/:appliance/enlist',
    {
      schema: {
        tags: ['appliances'],
        summary: 'Make every system behind the appliance a machine linked to it (matched by UUID, serial, MACs); optionally inspect them',
        params: Params,
        body: Type.Object(
          {
            inspect: Type.Optional(Type.Boolean()),
            systems: Type.Optional(Type.Array(Type.String({ maxLength: 512 }), { maxItems: 10000, description: 'only these system references or names' })),
            waitSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 600, default: 120 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            items: Type.Array(
              Type.Object({
                system: Type.Unknown(),
                outcome: Type.String({ enum: ['created', 'matched', 'conflict'] }),
                machine: Type.Union([MachineSchema, Type.Null()]),
                note: Type.Union([Type.String(), Type.Null()]),
                inspecting: Type.Boolean(),
              }),
            ),
          }),
          ...errors,
        },
      },
      preValidation: async (req) => {
        req.body ??= {};
      },
    },
    async (req) => {
      const body = req.body;
      const items = await s.enlister.enlist(req.params.appliance, {
        inspect: body.inspect ?? false,
        ...(body.systems ? { systems: body.systems } : {}),
        waitMs: (body.waitSeconds ?? 120) * 1000,
        actor: operatorActor(req.principal),
      });
      return { items: items.map((e) => ({ ...e, machine: e.machine ? presentMachine(e.machine) : null })) };
    },
  );
}
