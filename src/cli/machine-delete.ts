import type { CommandRegistrar } from './context.js';

export const registerMachineDelete: CommandRegistrar = (machine, ctx) => {
  machine
    .command('delete')
    .alias('rm')
    .description('delete a machine and its history (protected machines and work in progress are refused)')
    .argument('<machine>', 'name or id')
    .action(async (key: string) => {
      await ctx.client().deleteMachine(key);
      ctx.out.line(`deleted ${key}`);
    });
};
