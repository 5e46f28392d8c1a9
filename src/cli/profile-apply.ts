import type { CommandRegistrar } from './context.js';
import { readDocumentFile, reportDocumentError } from './profile-documents.js';
import type { ApplyOutcome } from '../profiles/writes.js';

export function printApplyOutcome(out: { line(s: string): void }, r: ApplyOutcome): void {
  for (const p of r.pools) out.line(`pool ${p.name}: ${p.outcome} (${p.entries} entr${p.entries === 1 ? 'y' : 'ies'})`);
  for (const p of r.profiles) out.line(`profile ${p.name}: ${p.outcome} (position ${p.position})`);
}

export const registerProfileApply: CommandRegistrar = (profile, ctx) => {
  profile
    .command('apply')
    .description('create or replace profiles (and pools) from a YAML or JSON file, all or nothing')
    .requiredOption('-f, --file <file>', 'a profile, a list of profiles, or { pools: [...], profiles: [...] }')
    .option('--json', 'print JSON')
    .action(async (o: { file: string; json?: boolean }) => {
      let doc;
      try {
        doc = readDocumentFile(o.file, 'profiles');
      } catch (e) {
        return reportDocumentError(ctx.out, { file: o.file, body: {}, locate: () => null }, e);
      }
      let r: ApplyOutcome;
      try {
        r = await ctx.client().request<ApplyOutcome>('POST', '/api/v1/profiles/apply', doc.body);
      } catch (e) {
        return reportDocumentError(ctx.out, doc, e);
      }
      if (o.json) ctx.out.json(r);
      else printApplyOutcome(ctx.out, r);
    });
};
