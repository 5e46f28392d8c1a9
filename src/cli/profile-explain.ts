import type { CommandRegistrar } from './context.js';
import type { ExplanationView } from '../profiles/schemas.js';

export const registerProfileExplain: CommandRegistrar = (profile, ctx) => {
  profile
    .command('explain')
    .description('for each profile in order: does the machine match it, and if not, the first rule that failed and why')
    .argument('<machine>', 'machine name or id')
    .option('--json', 'print JSON')
    .action(async (machine: string, o: { json?: boolean }) => {
      const ex = await ctx.client().request<ExplanationView>('GET', `/api/v1/profiles/explain/${encodeURIComponent(machine)}`);
      if (o.json) return ctx.out.json(ex);
      const lines = [`Machine ${ex.machine.name}: ${ex.current?.profile ? `has profile ${ex.current.profile}` : ex.current?.error ? `has no profile (${ex.current.error})` : 'has no profile'}`];
      lines.push(`Inspected now, it would match: ${ex.selected ?? 'no profile'}${ex.selected ? ' (if its pool has an entry for it)' : ''}`);
      for (const p of ex.profiles) {
        const mark = p.matched ? (p.quotaExhausted ? '~' : '+') : '-';
        lines.push(`${mark} ${p.name} (position ${p.position}${p.remaining === null ? '' : `, ${p.remaining} left`})`);
        lines.push(...p.text.split('\n').map((l) => `    ${l}`));
      }
      ctx.out.line(lines.join('\n'));
    });
};
