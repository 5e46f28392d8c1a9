import type { CommandRegistrar } from './context.js';
import { readDocumentFile, reportDocumentError } from './profile-documents.js';
import { printApplyOutcome } from './profile-apply.js';
import type { ApplyOutcome } from '../profiles/writes.js';

export const registerPoolApply: CommandRegistrar = (pool, ctx) => {
  pool
    .command('apply')
    .description('create or replace pools from a YAML or JSON file, all or nothing; entries held by machines cannot change')
    .requiredOption('-f, --file <file>', 'a pool ({ name, entries: [...] } or { name, generate: {...} }), or a list of pools')
    .option('--json', 'print JSON')
    .action(async (o: { file: string; json?: boolean }) => {
      let doc;
      try {
        doc = readDocumentFile(o.file, 'pools');
      } catch (e) {
        return reportDocumentError(ctx.out, { file: o.file, body: {}, locate: () => null }, e);
      }
      let r: ApplyOutcome;
      try {
        r = await ctx.client().request<ApplyOutcome>('POST', '/api/v1/pools/apply', { pools: doc.body.pools ?? [] });
      } catch (e) {
        return reportDocumentError(ctx.out, doc, e);
      }
      if (o.json) ctx.out.json(r);
      else printApplyOutcome(ctx.out, r);
    });
};
