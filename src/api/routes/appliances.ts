import { Type } from 'typebox';
import type { App, AppServices } from '../context.js';
import { operatorActor } from '../context.js';
import { ApplianceCreate, ApplianceSchema, ErrorResponse, MachineSchema } from '../schemas.js';
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
