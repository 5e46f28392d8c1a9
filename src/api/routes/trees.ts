import { Readable } from 'node:stream';
import { Type } from 'typebox';
import type { App } from '../context.js';
import { ErrorResponse } from '../schemas.js';
import { PlinthError } from '../../core/errors.js';
import { TREE_NAME_PATTERN, type TreeStore } from '../../trees/store.js';
import {
  ROLL_DEFAULT_DEADLINE_SECONDS,
  ROLL_MACHINE_STATES,
  ROLL_MAX_DEADLINE_SECONDS,
  ROLL_MAX_MACHINES,
  ROLL_MIN_DEADLINE_SECONDS,
  ROLL_STATES,
  type RollService,
} from '../../trees/rolls.js';
import { operatorActor } from '../context.js';
import { actorLabel } from '../../inventory/machine.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 413: ErrorResponse, 415: ErrorResponse };
const Name = Type.String({ pattern: TREE_NAME_PATTERN });
export const TreeSchema = Type.Object(
  {
    role: Type.String(),
    version: Type.String(),
    entries: Type.Integer({ description: 'files, links and directories in the tree' }),
    bytes: Type.Integer({ description: 'bytes of its regular files' }),
    importedAt: Type.String({ format: 'date-time' }),
    upgrades: Type.Array(Type.String(), { description: 'versions it can be upgraded to (stored upgrade steps)' }),
  },
  { $id: 'Tree' },
);
const TreeParams = Type.Object({ role: Name, version: Name }, { additionalProperties: false });
const StepParams = Type.Object({ role: Name, from: Name, to: Name }, { additionalProperties: false });
const Script = Type.String({ maxLength: 1024 * 1024 });
const UpgradeStepSchema = Type.Object(
  {
    exclude: Type.Optional(Type.String({ maxLength: 1024 * 1024, description: 'rsync patterns never synchronised (local files kept)' })),
    add_only: Type.Optional(Type.String({ maxLength: 1024 * 1024, description: 'paths copied only when absent on the host' })),
    pre: Type.Optional(Script),
    post: Type.Optional(Script),
  },
  { additionalProperties: false, $id: 'TreeUpgradeStep' },
);
const TREE_LIMIT = 256 * 1024 ** 3; // trees are streamed to disk, never buffered

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
export const RollSchema = Type.Object(
  {
    id: Type.String(),
    role: Type.String(),
    to: Type.String({ description: 'the version the machines are taken to' }),
    parallel: Type.Integer({ description: 'how many machines upgrade at once' }),
    deadlineSeconds: Type.Integer({ description: "how long each machine has, from being asked, to report the roll's version; one still upgrading after it fails, and fails the roll" }),
    state: Type.Enum(ROLL_STATES),
    createdAt: Type.String({ format: 'date-time' }),
    createdBy: Type.String(),
    finishedAt: Nullable(Type.String({ format: 'date-time' })),
    failure: Type.Union([Type.Object({ machine: Type.String(), message: Type.String() }), Type.Null()], { description: 'the first failure, which stopped the roll' }),
    counts: Type.Record(Type.String(), Type.Integer(), { description: 'machines per state' }),
    machines: Type.Array(
      Type.Object({
        id: Type.String(),
        name: Type.String(),
        position: Type.Integer(),
        state: Type.Enum(ROLL_MACHINE_STATES),
        from: Type.String({ description: 'its version when the roll started' }),
        startedAt: Nullable(Type.String({ format: 'date-time', description: 'when it was asked to upgrade' })),
        deadlineAt: Nullable(Type.String({ format: 'date-time', description: 'startedAt plus deadlineSeconds: still upgrading after it, it fails the roll' })),
        polledAt: Nullable(Type.String({ format: 'date-time', description: 'when its host first polled (edeploy poll) and was told the version' })),
        finishedAt: Nullable(Type.String({ format: 'date-time' })),
        message: Nullable(Type.String()),
      }),
    ),
  },
  { $id: 'TreeRoll' },
);
const RollBody = Type.Object(
  {
    role: Name,
    to: Name,
    machines: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { minItems: 1, maxItems: ROLL_MAX_MACHINES, description: 'machines by name or id, upgraded in this order' })),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256, pattern: '^[^=]+(=.*)?$' }), { minItems: 1, maxItems: 64, description: 'or every machine with these tags (key or key=value, all must match), in name order' })),
    parallel: Type.Optional(Type.Integer({ minimum: 1, maximum: ROLL_MAX_MACHINES, default: 1, description: 'how many machines upgrade at once' })),
    deadlineSeconds: Type.Optional(
      Type.Integer({
        minimum: ROLL_MIN_DEADLINE_SECONDS,
        maximum: ROLL_MAX_DEADLINE_SECONDS,
        default: ROLL_DEFAULT_DEADLINE_SECONDS,
        description: "how long each machine has, from being asked, to report the roll's version (its host polls, upgrades and reports); one still upgrading after it fails, and fails the roll. Default an hour",
      }),
    ),
  },
  { additionalProperties: false },
);
const RollParams = Type.Object({ roll: Type.String({ pattern: '^[0-9a-f-]{36}$' }) }, { additionalProperties: false });

/** eDeploy's trees (docs/trees.md): the store's API, rolling upgrades and the `.edeploy` tarballs machines fetch. */
export function treeRoutes(trees: TreeStore, rolls: RollService) {
  return async (app: App): Promise<void> => {
    app.post(
      '/api/v1/tree-rolls',
      {
        schema: {
          tags: ['trees'],
          summary: 'Start a rolling upgrade: machines of a role taken to a version, `parallel` at a time, stopping at the first failure',
          body: RollBody,
          response: { 201: RollSchema, ...errors },
        },
      },
      async (req, reply) => {
        const roll = await rolls.start(req.body, actorLabel(operatorActor(req.principal)));
        req.log.info({ roll: roll.id, role: roll.role, to: roll.to, machines: roll.machines.length, by: req.principal?.name }, 'tree roll started');
        return reply.status(201).send(roll);
      },
    );

    app.get(
      '/api/v1/tree-rolls',
      { schema: { tags: ['trees'], summary: 'Rolling upgrades, newest first', response: { 200: Type.Object({ items: Type.Array(RollSchema) }), ...errors } } },
      async () => ({ items: await rolls.list() }),
    );

    app.get(
      '/api/v1/tree-rolls/:roll',
      { schema: { tags: ['trees'], summary: 'One rolling upgrade, with each machine', params: RollParams, response: { 200: RollSchema, ...errors } } },
      async (req) => rolls.get(req.params.roll),
    );

    app.post(
      '/api/v1/tree-rolls/:roll/stop',
      { schema: { tags: ['trees'], summary: 'Stop a running roll: no further machine is asked to upgrade', params: RollParams, response: { 200: RollSchema, ...errors } } },
      async (req) => rolls.stop(req.params.roll, actorLabel(operatorActor(req.principal))),
    );

    app.get(
      '/api/v1/trees',
      { schema: { tags: ['trees'], summary: 'Every stored tree (role at a version)', response: { 200: Type.Object({ items: Type.Array(TreeSchema) }), ...errors } } },
      async () => ({ items: trees.list() }),
    );

    app.get(
      '/api/v1/trees/:role/:version',
      { schema: { tags: ['trees'], summary: 'One tree', params: TreeParams, response: { 200: TreeSchema, ...errors } } },
      async (req) => trees.get(req.params.role, req.params.version),
    );

    app.put(
      '/api/v1/trees/:role/:version',
      {
        config: { role: 'admin' },
        bodyLimit: TREE_LIMIT,
        schema: {
          tags: ['trees'],
          summary: 'Import a tree: its files as a tar archive (plain or compressed) in an application/octet-stream body; a version is immutable',
          params: TreeParams,
          response: { 201: TreeSchema, ...errors },
        },
      },
      async (req, reply) => {
        if (!(req.body instanceof Readable)) throw new PlinthError('unsupported_media_type', 'send the tree as a tar archive, application/octet-stream');
        const tree = await trees.importTar(req.params.role, req.params.version, req.body);
        req.log.info({ role: tree.role, version: tree.version, entries: tree.entries, by: req.principal?.name }, 'tree imported');
        return reply.status(201).send(tree);
      },
    );

    app.get(
      '/api/v1/trees/:role/:from/upgrades/:to',
      { schema: { tags: ['trees'], summary: 'The upgrade step from one version to another', params: StepParams, response: { 200: UpgradeStepSchema, ...errors } } },
      async (req) => trees.getUpgrade(req.params.role, req.params.from, req.params.to),
    );

    app.put(
      '/api/v1/trees/:role/:from/upgrades/:to',
      {
        config: { role: 'admin' },
        schema: {
          tags: ['trees'],
          summary: "Store the upgrade step from one version to another (eDeploy's metadata directory: exclude, add_only, pre, post), replacing any before",
          params: StepParams,
          body: UpgradeStepSchema,
          response: { 200: TreeSchema, ...errors },
        },
      },
      async (req) => {
        const tree = trees.setUpgrade(req.params.role, req.params.from, req.params.to, req.body);
        req.log.info({ role: req.params.role, from: req.params.from, to: req.params.to, by: req.principal?.name }, 'tree upgrade step stored');
        return tree;
      },
    );

    app.get(
      '/install/:file',
      {
        config: { role: 'public' },
        schema: {
          tags: ['trees'],
          summary: "A tree as eDeploy's `<role>-<version>.edeploy` (a gzip'ed tar of the tree), for installers fetching over HTTP",
          security: [],
          params: Type.Object({ file: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._+-]{0,200}\\.edeploy$' }) }, { additionalProperties: false }),
        },
      },
      async (req, reply) => {
        const t = trees.tarball(req.params.file.slice(0, -'.edeploy'.length));
        reply.raw.once('close', () => t.child.kill()); // a client gone mid-download stops tar
        return reply.type('application/gzip').header('content-disposition', `attachment; filename="${req.params.file}"`).send(t.stream);
      },
    );
  };
}
