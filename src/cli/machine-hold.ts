import { collect, oneOf, type CommandRegistrar } from './context.js';
import { readSshKeyFiles } from './ssh-key-files.js';
import { UsageError } from './errors.js';
import { EXIT_TARGETS } from '../deploy/holds.js';

/**
 * The installer held for work done over SSH: `boot-installer` (automation installs the OS
 * itself), `rescue` (an operator's shell, disks untouched), their exits, and `installer`,
 * which says where to SSH to and prints the known_hosts lines that pin the host keys.
 */
export const registerMachineHold: CommandRegistrar = (machine, ctx) => {
  const hold = (verb: 'boot-installer' | 'rescue', description: string) =>
    machine
      .command(verb)
      .description(description)
      .argument('<machine>', 'name or id')
      .option('--ssh-key <file>', "a public key file the installer's SSH server lets in (repeatable; at least one)", collect, [])
      .option('--reason <text>', 'why (recorded in the history)')
      .option('--json', 'print JSON')
      .action(async (key: string, o: { sshKey: string[]; reason?: string; json?: boolean }) => {
        if (o.sshKey.length === 0) throw new UsageError('--ssh-key: give at least one public key file');
        const sshKeys = readSshKeyFiles(o.sshKey);
        const r = await ctx.client().action(key, verb, { sshKeys, ...(o.reason ? { reason: o.reason } : {}) });
        if (o.json) return ctx.out.json(r);
        ctx.out.line(`${r.machine.name}: ${r.machine.state}${r.run ? ` (run ${r.run.id})` : ''}; 'plinth machine installer ${r.machine.name}' says where to SSH once it is up`);
      });
  hold('boot-installer', 'boot the installer with an SSH server for automation that installs the OS itself (from available or deployed)');
  hold('rescue', 'boot the installer with an SSH server to repair a machine by hand; its disks are left alone');

  machine
    .command('console')
    .description("boot the installer with its console menu on the machine's console (serial and screen), from which an image may be installed on it (from available; docs/console.md)")
    .argument('<machine>', 'name or id')
    .option('--ssh-key <file>', "a public key file the installer's SSH server lets in besides (repeatable; none: no SSH server)", collect, [])
    .option('--reason <text>', 'why (recorded in the history)')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { sshKey: string[]; reason?: string; json?: boolean }) => {
      const sshKeys = o.sshKey.length ? readSshKeyFiles(o.sshKey) : [];
      const r = await ctx.client().action(key, 'boot-installer', { console: true, ...(sshKeys.length ? { sshKeys } : {}), ...(o.reason ? { reason: o.reason } : {}) });
      if (o.json) return ctx.out.json(r);
      ctx.out.line(`${r.machine.name}: ${r.machine.state}${r.run ? ` (run ${r.run.id})` : ''}; its console shows the installer's menu once it is up`);
    });

  machine
    .command('exit-installer')
    .description('leave the installer: boot the installed OS (--to deployed) or go back to the state before (--to previous, the default)')
    .argument('<machine>', 'name or id')
    .option('--to <where>', `${EXIT_TARGETS.join(' or ')}`)
    .option('--reason <text>', 'why (recorded in the history)')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { to?: string; reason?: string; json?: boolean }) => {
      const to = o.to === undefined ? undefined : oneOf(o.to, '--to', EXIT_TARGETS);
      const r = await ctx.client().action(key, 'exit-installer', { ...(to ? { to } : {}), ...(o.reason ? { reason: o.reason } : {}) });
      if (o.json) return ctx.out.json(r);
      ctx.out.line(`${r.machine.name}: ${r.machine.state}`);
    });

  machine
    .command('exit-rescue')
    .description('leave rescue: back to the state before (deployed machines boot their disk again)')
    .argument('<machine>', 'name or id')
    .option('--reason <text>', 'why (recorded in the history)')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { reason?: string; json?: boolean }) => {
      const r = await ctx.client().action(key, 'exit-rescue', o.reason ? { reason: o.reason } : {});
      if (o.json) return ctx.out.json(r);
      ctx.out.line(`${r.machine.name}: ${r.machine.state}`);
    });

  machine
    .command('installer')
    .description('where to SSH to a machine held in the installer or rescue, and its host keys')
    .argument('<machine>', 'name or id')
    .option('--known-hosts', 'print only the known_hosts lines (for ssh -o UserKnownHostsFile=...)')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { knownHosts?: boolean; json?: boolean }) => {
      const a = await ctx.client().installerAccess(key);
      if (o.json) return ctx.out.json(a);
      if (o.knownHosts) {
        if (a.knownHosts.length === 0) throw new Error(`${a.machine}: its installer has not reported its SSH server yet (${a.state})`);
        for (const l of a.knownHosts) ctx.out.line(l);
        return;
      }
      if (a.address === null) return ctx.out.line(`${a.machine}: ${a.state}; the installer has not reported its SSH server yet`);
      ctx.out.line(`${a.machine}: ${a.state}; ssh -p ${a.port} ${a.user}@${a.address}`);
      for (const k of a.hostKeys) ctx.out.line(`host key: ${k}`);
    });
};
