import type { CommandRegistrar } from './context.js';
import { poolExpandCommand } from '../matching/index.js';
import { finishLocal } from './local-command.js';

export const registerPoolExpand: CommandRegistrar = (pool, ctx) => {
  pool
    .command('expand')
    .description('print the entries a CMDB model (generate(...), {$generate: ...}, or a list) stands for, as a JSON array; needs no controller')
    .argument('<model>', 'a .cmdb file (Python literal), .json or .yaml')
    .action(async (model: string) => finishLocal(ctx, await poolExpandCommand(model)));
};
