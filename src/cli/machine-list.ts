import type { CommandRegistrar } from './context.js';
import { collect, positiveInt } from './context.js';
import { machineRow, MACHINE_COLUMNS } from './machine-format.js';
import type { MachineView } from '../api/client.js';

export const registerMachineList: CommandRegistrar = (machine, ctx) => {
  machine
    .command('list')
    .alias('ls')
    .description('list machines')
    .option('--state <state>', 'only machines in this state (repeatable)', collect, [])
    .option('--tag <key[=value]>', 'only machines with this tag (repeatable; all must match)', collect, [])
    .option('--owner <owner>', 'only machines allocated to this owner')
    .option('-s, --search <text>', 'substring of name, serial, asset tag, UUID or MAC')
    .option('--maintenance', 'only machines in maintenance')
    .option('--role <role>', 'only machines installed from a tree of this role')
    .option('--tree-version <version>', 'only machines whose tree is at this version (as the host last reported)')
    .option('--with-facts', 'include each machine\'s facts (with --json)')
    .option('--limit <n>', 'at most this many (default: all)')
    .option('--json', 'print JSON')
    .action(async (o: { state: string[]; tag: string[]; owner?: string; search?: string; maintenance?: boolean; role?: string; treeVersion?: string; withFacts?: boolean; limit?: string; json?: boolean }) => {
      const limit = o.limit ? positiveInt(o.limit, '--limit') : Infinity;
      const q = {
        ...(o.state.length ? { state: o.state } : {}),
        ...(o.tag.length ? { tag: o.tag } : {}),
        ...(o.owner ? { owner: o.owner } : {}),
        ...(o.search ? { q: o.search } : {}),
        ...(o.maintenance ? { maintenance: true } : {}),
        ...(o.role ? { role: o.role } : {}),
        ...(o.treeVersion ? { version: o.treeVersion } : {}),
        ...(o.withFacts ? { include: ['facts'] } : {}),
        limit: Math.min(limit, 1000),
      };
      const items: MachineView[] = [];
      for await (const m of ctx.client().allMachines(q)) {
        items.push(m);
        if (items.length >= limit) break;
      }
      if (o.json) ctx.out.json(items);
      else ctx.out.table(items.map(machineRow), MACHINE_COLUMNS);
    });
};
