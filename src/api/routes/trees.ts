import { Readable } from 'node:stream';
import { Type } from 'typebox';
import type { App } from '../context.js';
import { ErrorResponse } from '../schemas.js';
import { PlinthError } from '../../core/errors.js';
import { TREE_NAME_PATTERN, type TreeStore } from '../../trees/store.js';

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

/** eDeploy's trees (docs/trees.md): the store's API and the `.edeploy` tarballs machines fetch. */
export function treeRoutes(trees: TreeStore) {
  return async (app: App): Promise<void> => {
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
