import type { CommandRegistrar } from './context.js';
import { positiveInt } from './context.js';

export const registerMachineTrace: CommandRegistrar = (machine, ctx) => {
  machine
    .command('trace')
    .description('the boot trace: each boot attempt and every stage the boot service saw')
    .argument('<machine>', 'name or id')
    .option('--attempts <n>', 'how many of the newest attempts', '5')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { attempts: string; json?: boolean }) => {
      const t = await ctx.client().trace(key, positiveInt(o.attempts, '--attempts'));
      if (o.json) return ctx.out.json(t);
      if (t.attempts.length === 0) return ctx.out.line(`${t.machine}: no boot attempt recorded`);
      for (const a of t.attempts) {
        ctx.out.line(`attempt ${a.startedAt}  decision: ${a.decision}${a.runId ? `  run ${a.runId}` : ''}${a.bootMac ? `  via ${a.bootMac}` : ''}${a.platform ? ` (${a.platform}/${a.arch})` : ''}`);
        const t0 = new Date(a.stages[0]?.at ?? a.startedAt).getTime();
        for (const s of a.stages) {
          const dt = ((new Date(s.at).getTime() - t0) / 1000).toFixed(1).padStart(7);
          const detail = s.detail && Object.keys(s.detail as object).length ? `  ${JSON.stringify(s.detail)}` : '';
          ctx.out.line(`  +${dt}s  ${s.stage}${detail}`);
        }
      }
    });
};
