import type { CommandRegistrar } from './context.js';
import type { ProfileView } from '../profiles/schemas.js';
import { quotaText } from './profile-list.js';

export const registerProfileShow: CommandRegistrar = (profile, ctx) => {
  profile
    .command('show')
    .description('show one profile: order, quota, pool, deploy configuration and spec')
    .argument('<profile>', 'profile name')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const p = await ctx.client().request<ProfileView>('GET', `/api/v1/profiles/${encodeURIComponent(name)}`);
      if (o.json) return ctx.out.json(p);
      const lines = [
        `Name:        ${p.name}`,
        `Position:    ${p.position}`,
        `Quota:       ${quotaText(p)}`,
        `Pool:        ${p.pool ?? '-'}${p.pool ? (p.releaseReturnsEntry ? ' (entry given back on release)' : ' (entry kept on release)') : ''}`,
        `Deploy:      ${Object.keys(p.deploy).length ? JSON.stringify(p.deploy) : '-'}`,
      ];
      if (p.description) lines.push(`Description: ${p.description}`);
      lines.push('Spec:');
      if (p.specText !== null) lines.push(...p.specText.replace(/\n+$/, '').split('\n').map((l) => `  ${l}`));
      else lines.push(...p.spec.map((s) => `  (${s.map((v) => JSON.stringify(v)).join(', ')})`));
      ctx.out.line(lines.join('\n'));
    });
};
