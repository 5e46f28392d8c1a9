import type { CommandRegistrar } from './context.js';
import { collect, parsePairs } from './context.js';
import { describeMachine } from './machine-format.js';
import { identityFromFlags, withIdentityOptions, type IdentityFlags } from './identity-options.js';
import type { MachineCreateBody } from '../api/schemas.js';

export const registerMachineCreate: CommandRegistrar = (machine, ctx) => {
  const cmd = machine
    .command('create')
    .description('enroll a machine by hand (machines that network-boot enroll themselves)')
    .argument('[name]', 'name (default: a generated readable name)');
  withIdentityOptions(cmd, 'MAC address (repeatable)')
    .option('--tag <key=value>', 'tag (repeatable)', collect, [])
    .option('--owner <owner>', 'allocate to this owner')
    .option('--maintenance <reason>', 'enroll in maintenance with this reason')
    .option('--protected', 'refuse destructive actions')
    .option('--boot-address <ipv4>', "its fixed address: from Plinth's DHCP server (dhcp.mode full), or on its virtual-media ISO (vmedia.network)")
    .option('--json', 'print JSON')
    .action(async (name: string | undefined, o: IdentityFlags & { tag: string[]; owner?: string; maintenance?: string; protected?: boolean; bootAddress?: string; json?: boolean }) => {
      const identity = identityFromFlags(o);
      const body: MachineCreateBody = {
        ...(name ? { name } : {}),
        ...(identity ? { identity } : {}),
        ...(o.tag.length ? { tags: parsePairs(o.tag, '--tag') } : {}),
        ...(o.owner ? { owner: o.owner } : {}),
        ...(o.maintenance ? { maintenance: true, maintenanceReason: o.maintenance } : {}),
        ...(o.protected ? { protected: true } : {}),
        ...(o.bootAddress ? { bootAddress: o.bootAddress } : {}),
      };
      const m = await ctx.client().createMachine(body);
      if (o.json) ctx.out.json(m);
      else ctx.out.line(describeMachine(m));
    });
};
