import type { CommandRegistrar } from './context.js';
import { collect, positiveInt } from './context.js';
import { machineRow, MACHINE_COLUMNS } from './machine-format.js';

/**
 * `plinth machine allocate`: take available, unowned machines that meet the constraints for
 * an owner (all of them or none). Sizes go to the controller as written (8G, 16GiB): it
 * parses them, so the CLI and the API accept the same text.
 */
export const registerMachineAllocate: CommandRegistrar = (machine, ctx) => {
  machine
    .command('allocate')
    .description('allocate available, unowned machines that meet the constraints (all --count of them or none); release or `update --no-owner` gives them back')
    .option('--owner <owner>', 'who holds them (default: the token\'s name)')
    .option('-n, --count <n>', 'how many machines', '1')
    .option('--cpus <n>', 'at least this many logical CPUs')
    .option('--memory <size>', 'at least this much memory (8G, 16GiB)')
    .option('--disk <size>', 'at least one disk this large (100G)')
    .option('--arch <arch>', 'CPU architecture (x86_64, aarch64)')
    .option('--tag <key[=value]>', 'a tag the machines must have (repeatable; all must match)', collect, [])
    .option('--profile <name>', 'only machines matched to this profile')
    .option('--reason <text>', 'why (recorded in the history)')
    .option('--json', 'print JSON')
    .action(async (o: { owner?: string; count: string; cpus?: string; memory?: string; disk?: string; arch?: string; tag: string[]; profile?: string; reason?: string; json?: boolean }) => {
      const r = await ctx.client().allocate({
        count: positiveInt(o.count, '--count'),
        ...(o.owner !== undefined ? { owner: o.owner } : {}),
        ...(o.cpus !== undefined ? { cpus: positiveInt(o.cpus, '--cpus') } : {}),
        ...(o.memory !== undefined ? { memory: o.memory } : {}),
        ...(o.disk !== undefined ? { disk: o.disk } : {}),
        ...(o.arch !== undefined ? { arch: o.arch } : {}),
        ...(o.tag.length ? { tags: o.tag } : {}),
        ...(o.profile !== undefined ? { profile: o.profile } : {}),
        ...(o.reason !== undefined ? { reason: o.reason } : {}),
      });
      if (o.json) return ctx.out.json(r);
      ctx.out.table(r.machines.map(machineRow), MACHINE_COLUMNS);
    });
};
