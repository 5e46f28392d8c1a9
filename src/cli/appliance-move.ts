import type { CommandRegistrar } from './context.js';

interface MoveView {
  from: string;
  to: string;
  machines: Array<{ name: string; ref: string | null }>;
}

export const registerApplianceMove: CommandRegistrar = (appliance, ctx) => {
  appliance
    .command('move')
    .description("move machines to another appliance (a BMC or hypervisor replaced): the named ones, or all of --from's")
    .requiredOption('--from <appliance>', 'the appliance they are linked to now')
    .requiredOption('--to <appliance>', 'the appliance they move to')
    .argument('[machines...]', 'names or ids (default: every machine of --from)')
    .option('--ref <ref>', "the machine's reference on the new appliance (one machine only; otherwise each keeps its own)")
    .option('--json', 'print JSON')
    .action(async (machines: string[], o: { from: string; to: string; ref?: string; json?: boolean }) => {
      const r = await ctx.client().request<MoveView>('POST', `/api/v1/appliances/${encodeURIComponent(o.from)}/move`, {
        to: o.to,
        ...(machines.length ? { machines } : {}),
        ...(o.ref !== undefined ? { ref: o.ref } : {}),
      });
      if (o.json) return ctx.out.json(r);
      ctx.out.line(`moved ${r.machines.length} machine(s) from ${r.from} to ${r.to}: ${r.machines.map((m) => m.name).join(', ')}`);
    });
};
