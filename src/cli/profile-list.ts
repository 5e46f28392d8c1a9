import type { CommandRegistrar } from './context.js';
import type { ProfileView } from '../profiles/schemas.js';

export const quotaText = (p: Pick<ProfileView, 'quota' | 'remaining' | 'held'>): string =>
  p.quota === null ? `unlimited (${p.held} held)` : `${p.remaining} of ${p.quota} left`;

export const registerProfileList: CommandRegistrar = (profile, ctx) => {
  profile
    .command('list')
    .alias('ls')
    .description('list profiles in the order machines are matched against them')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { items } = await ctx.client().request<{ items: ProfileView[] }>('GET', '/api/v1/profiles');
      if (o.json) return ctx.out.json(items);
      ctx.out.table(
        items.map((p) => ({ position: p.position, name: p.name, quota: quotaText(p), pool: p.pool, rules: p.spec.length, image: p.deploy.image ?? null })),
        ['position', 'name', 'quota', 'pool', 'rules', 'image'],
      );
    });
};
