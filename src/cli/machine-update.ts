import type { CommandRegistrar } from './context.js';
import { collect, onOff, oneOf, parsePairs } from './context.js';
import { BOOT_METHODS } from '../core/boot-method.js';
import { describeMachine } from './machine-format.js';
import { identityFromFlags, withIdentityOptions, type IdentityFlags } from './identity-options.js';
import type { MachinePatchBody } from '../api/schemas.js';
import { UsageError } from './errors.js';

type UpdateFlags = IdentityFlags & {
  rename?: string;
  tag: string[];
  untag: string[];
  owner?: string | false;
  maintenance?: string;
  reason?: string;
  protected?: string;
  bootMethod?: string;
  bootAddress?: string | false;
  json?: boolean;
};

export const registerMachineUpdate: CommandRegistrar = (machine, ctx) => {
  const cmd = machine
    .command('update')
    .description('change a machine: name, identity, tags, owner, maintenance, protection, boot method, boot address')
    .argument('<machine>', 'name or id')
    .option('--rename <name>', 'new name');
  withIdentityOptions(cmd, 'MAC address; replaces the list (repeatable)')
    .option('--tag <key=value>', 'set a tag (repeatable)', collect, [])
    .option('--untag <key>', 'remove a tag (repeatable)', collect, [])
    .option('--owner <owner>', 'allocate to this owner')
    .option('--no-owner', 'clear the owner')
    .option('--maintenance <on|off>', 'enter or leave maintenance')
    .option('--reason <text>', 'why (with --maintenance on)')
    .option('--protected <on|off>', 'refuse destructive actions')
    .option('--boot-method <method>', "how the lifecycle boots it into the installer: pxe, http, vmedia, or 'appliance' for its appliance's")
    .option('--boot-address <ipv4>', "its fixed address: from Plinth's DHCP server (dhcp.mode full), or on its virtual-media ISO (vmedia.network)")
    .option('--no-boot-address', 'clear the fixed address')
    .option('--json', 'print JSON')
    .action(async (key: string, o: UpdateFlags) => {
      const patch: MachinePatchBody = {};
      if (o.rename) patch.name = o.rename;
      const identity = identityFromFlags(o);
      if (identity) patch.identity = identity;
      if (o.tag.length || o.untag.length) {
        patch.tags = { ...parsePairs(o.tag, '--tag'), ...Object.fromEntries(o.untag.map((k) => [k, null])) };
      }
      // commander sets owner=false for --no-owner and a string for --owner X.
      if (o.owner === false) patch.owner = null;
      else if (typeof o.owner === 'string') patch.owner = o.owner;
      const maintenance = onOff(o.maintenance, '--maintenance');
      if (maintenance !== undefined) patch.maintenance = maintenance;
      if (o.reason !== undefined) patch.maintenanceReason = o.reason;
      const prot = onOff(o.protected, '--protected');
      if (prot !== undefined) patch.protected = prot;
      if (o.bootMethod !== undefined) patch.bootMethod = o.bootMethod === 'appliance' ? null : oneOf(o.bootMethod, '--boot-method', BOOT_METHODS);
      // commander sets bootAddress=false for --no-boot-address.
      if (o.bootAddress === false) patch.bootAddress = null;
      else if (typeof o.bootAddress === 'string') patch.bootAddress = o.bootAddress;
      if (Object.keys(patch).length === 0) throw new UsageError('nothing to change: give at least one option (see plinth machine update --help)');
      const m = await ctx.client().updateMachine(key, patch);
      if (o.json) ctx.out.json(m);
      else ctx.out.line(describeMachine(m));
    });
};
