import type { CommandRegistrar } from './context.js';
import { specMatchCommand } from '../matching/index.js';
import { finishLocal } from './local-command.js';

export const registerSpecMatch: CommandRegistrar = (spec, ctx) => {
  spec
    .command('match')
    .description('match an eDeploy spec list against a hardware list (eDeploy try_match): prints {"matched", "vars"}; exit 0 matched, 1 not, 2 malformed input; needs no controller')
    .argument('<specs>', '.specs file (Python literal) or .json')
    .argument('<hw>', '.hw file (Python literal) or .json')
    .action(async (specs: string, hw: string) => finishLocal(ctx, await specMatchCommand(specs, hw)));
};
