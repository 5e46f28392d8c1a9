import type { CommandRegistrar } from './context.js';
import { positiveInt } from './context.js';
import type { LogEventView } from '../api/client.js';

const COLUMNS = ['seq', 'at', 'type', 'machine', 'actor', 'action', 'from', 'to', 'reason'];

const row = (e: LogEventView) => ({
  seq: e.seq,
  at: e.at,
  type: e.type,
  machine: e.machineId ?? e.applianceId,
  actor: e.actor,
  action: e.action,
  from: e.fromState,
  to: e.toState,
  reason: e.reason ?? (e.details && Object.keys(e.details).length ? JSON.stringify(e.details) : null),
});

/** `plinth events`: the event log, or (--follow) the live stream. */
export const registerEvents: CommandRegistrar = (program, ctx) => {
  program
    .command('events')
    .description('the event log (transitions, runs, power, appliances, images, security), oldest first')
    .option('--machine <machine>', 'only this machine (name or id)')
    .option('--type <types>', 'only these types: comma-separated prefixes, e.g. machine.transition,power.')
    .option('--after <seq>', 'events after this seq (default: from the first; with --follow: from now)')
    .option('--limit <n>', 'at most this many (default 100; not with --follow)')
    .option('-f, --follow', 'keep printing events as they happen (one JSON object a line with --json)')
    .option('--json', 'print JSON')
    .action(async (o: { machine?: string; type?: string; after?: string; limit?: string; follow?: boolean; json?: boolean }) => {
      const after = o.after !== undefined ? (o.after === '0' ? 0 : positiveInt(o.after, '--after')) : undefined;
      const q = { ...(o.machine ? { machine: o.machine } : {}), ...(o.type ? { type: o.type } : {}), ...(after !== undefined ? { after } : {}) };
      const client = ctx.client();
      if (!o.follow) {
        const page = await client.eventLog({ ...q, limit: o.limit ? Math.min(1000, positiveInt(o.limit, '--limit')) : 100 });
        if (o.json) ctx.out.json(page.items);
        else ctx.out.table(page.items.map(row), COLUMNS);
        return;
      }
      const stop = new AbortController();
      void ctx.stopSignal?.then(() => stop.abort());
      for await (const e of client.followEvents(q, stop.signal)) {
        if (o.json) ctx.out.line(JSON.stringify(e));
        else ctx.out.line(`${e.seq} ${e.at} ${e.type} ${e.machineId ?? e.applianceId ?? '-'} ${e.actor}${e.fromState !== e.toState ? ` ${e.fromState ?? '-'} → ${e.toState ?? '-'}` : ''}${e.reason ? ` ${e.reason}` : ''}`);
      }
    });
};
