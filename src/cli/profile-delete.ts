import type { CommandRegistrar } from './context.js';

export const registerProfileDelete: CommandRegistrar = (profile, ctx) => {
  profile
    .command('delete')
    .alias('rm')
    .description('delete a profile (refused while machines have it, unless --force detaches them)')
    .argument('<profile>', 'profile name')
    .option('--force', 'detach the machines that matched it')
    .action(async (name: string, o: { force?: boolean }) => {
      await ctx.client().request<void>('DELETE', `/api/v1/profiles/${encodeURIComponent(name)}`, undefined, o.force ? { force: true } : {});
      ctx.out.line(`deleted profile ${name}`);
    });
};
