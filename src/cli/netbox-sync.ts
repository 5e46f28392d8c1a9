import type { Static } from 'typebox';
import type { CommandRegistrar } from './context.js';
import type { NetboxSyncResult } from '../api/routes/netbox.js';
import { printImportOutcome } from './machine-import.js';

export const registerNetboxSync: CommandRegistrar = (netbox, ctx) => {
  netbox
    .command('sync')
    .description("pull NetBox's devices (netbox.filter in the controller's configuration) into machines now: matched by name or identity, created or updated, all or nothing; with netbox.writeBack, write each machine's state and serial back")
    .option('--dry-run', 'print what would change, change nothing')
    .option('--json', 'print JSON')
    .action(async (o: { dryRun?: boolean; json?: boolean }) => {
      const r = await ctx.client().request<Static<typeof NetboxSyncResult>>('POST', '/api/v1/netbox/sync', o.dryRun ? { dryRun: true } : {});
      if (o.json) return ctx.out.json(r);
      for (const s of r.skipped) ctx.out.error(`note: device ${s.device}${s.name ? ` (${s.name})` : ''} skipped: ${s.reason}`);
      printImportOutcome(ctx.out, r.import, `NetBox's ${r.devices} device(s)`);
      if (r.writtenBack?.length) ctx.out.line(`wrote state and serial back to ${r.writtenBack.length} device(s)`);
    });
};
