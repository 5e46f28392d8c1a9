import type { CommandRegistrar } from './context.js';
import { collect, parsePairs } from './context.js';
import { describeMachine } from './machine-format.js';
import { identityFromFlags, withIdentityOptions, type IdentityFlags } from './identity-options.js';
import { readDocument } from './machine-import.js';
import { UsageError } from './errors.js';
import type { MachineCreateBody, MachineBulkCreateBody } from '../api/schemas.js';

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
    .option('--from <file>', "enroll the machines a YAML or JSON file lists (the API's fields, as a list or under machines:) in one request: all or none")
    .option('--json', 'print JSON')
    .action(async (name: string | undefined, o: IdentityFlags & { tag: string[]; owner?: string; maintenance?: string; protected?: boolean; bootAddress?: string; from?: string; json?: boolean }) => {
      if (o.from) {
        const given = name !== undefined || identityFromFlags(o) || o.tag.length || o.owner || o.maintenance || o.protected || o.bootAddress;
        if (given) throw new UsageError('--from takes the machines from the file: give no name or other machine option with it');
        const ms = await ctx.client().createMachines(bulkBody(readDocument(o.from), o.from));
        if (o.json) return ctx.out.json(ms);
        for (const m of ms.machines) ctx.out.line(describeMachine(m));
        return ctx.out.line(`${ms.machines.length} machine(s) enrolled`);
      }
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

/** The file's machines as the bulk endpoint takes them: a list, or a document with `machines:` (the API checks each field). */
function bulkBody(doc: unknown, file: string): MachineBulkCreateBody {
  const machines = Array.isArray(doc) ? doc : doc && typeof doc === 'object' && 'machines' in doc ? (doc as { machines: unknown }).machines : undefined;
  if (!Array.isArray(machines)) throw new UsageError(`${file}: expected a list of machines, or machines: with one`);
  return { machines } as MachineBulkCreateBody;
}
