import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import type { Static } from 'typebox';
import type { CommandRegistrar } from './context.js';
import type { Output } from './output.js';
import { UsageError } from './errors.js';
import type { MachineImportRequest, MachineImportResult } from '../api/schemas.js';

type ImportResult = Static<typeof MachineImportResult>;

/** Reads the file as YAML (JSON is YAML too): a parse error is the file's line and column. */
export function readDocument(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const problem = doc.errors[0];
  if (problem) {
    const at = lines.linePos(problem.pos[0]);
    throw new UsageError(`${file}:${at.line}:${at.col}: ${problem.message.split('\n')[0]}`);
  }
  return doc.toJS({ maxAliasCount: 100 }) as unknown;
}

export const registerMachineImport: CommandRegistrar = (machine, ctx) => {
  machine
    .command('import')
    .description("create or update machines (and their BMCs as appliances) from a static inventory: a YAML document with machines:, or TripleO's nodes.json / instackenv.json; all or nothing, idempotent")
    .argument('<file>', 'the document')
    .option('--dry-run', 'print what would change, change nothing')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { dryRun?: boolean; json?: boolean }) => {
      const body: MachineImportRequest = { document: readDocument(file), ...(o.dryRun ? { dryRun: true } : {}) };
      const r = await ctx.client().request<ImportResult>('POST', '/api/v1/machines/import', body);
      if (o.json) return ctx.out.json(r);
      printImportOutcome(ctx.out, r, file);
    });
};

/** An import's plan or result: a row per entry that changes, then the counts; one line when nothing changes. */
export function printImportOutcome(out: Output, r: ImportResult, source: string): void {
  const changing = r.items.filter((i) => i.action !== 'unchanged' || (i.appliance && i.appliance.action !== 'unchanged'));
  if (changing.length === 0) return out.line(`nothing to change: ${r.unchanged} machine(s) already as ${source} says`);
  out.table(
    changing.map((i) => ({
      entry: i.entry,
      machine: i.machine ?? '(new name)',
      action: i.action,
      changes: i.changes.join(','),
      appliance: i.appliance ? `${i.appliance.name} (${i.appliance.action}${i.appliance.changes.length ? `: ${i.appliance.changes.join(',')}` : ''})` : '',
    })),
    ['entry', 'machine', 'action', 'changes', 'appliance'],
  );
  const counts = `${r.created} to create, ${r.updated} to update, ${r.unchanged} unchanged`;
  out.line(r.dryRun ? `dry run: ${counts}; nothing was changed` : counts.replace(/ to (create|update)/g, (_, w: string) => ` ${w}d`));
}
