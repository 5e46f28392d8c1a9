import { Type } from 'typebox';
import type { App } from '../context.js';
import { operatorActor } from '../context.js';
import { ErrorResponse, MachineImportResult, Nullable } from '../schemas.js';
import type { NetboxSync } from '../../sources/netbox-sync.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 409: ErrorResponse, 422: ErrorResponse, 502: ErrorResponse };

export const NetboxSyncResult = Type.Object({
  devices: Type.Integer({ description: 'devices NetBox listed for netbox.filter' }),
  skipped: Type.Array(Type.Object({ device: Type.Integer(), name: Nullable(Type.String()), reason: Type.String() })),
  import: MachineImportResult,
  writtenBack: Nullable(Type.Array(Type.String(), { description: 'devices whose plinth_* custom fields were written; null: writeBack off or a dry run' })),
});

export function netboxRoutes(netbox: NetboxSync) {
  return async (app: App): Promise<void> => {
    app.post(
      '/api/v1/netbox/sync',
      {
        schema: {
          tags: ['machines'],
          summary: "Pull NetBox's devices (netbox.filter) into machines now, like an import; dryRun gives the plan",
          body: Type.Object({ dryRun: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
          response: { 200: NetboxSyncResult, ...errors },
        },
        preValidation: async (req) => {
          req.body ??= {};
        },
      },
      async (req) => {
        const r = await netbox.sync({ dryRun: req.body.dryRun ?? false, actor: operatorActor(req.principal) });
        if (!req.body.dryRun) req.log.info({ devices: r.devices, created: r.import.created, updated: r.import.updated, by: req.principal?.name }, 'netbox sync');
        return r;
      },
    );
  };
}
