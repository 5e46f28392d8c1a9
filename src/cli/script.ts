import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { CommandRegistrar } from './context.js';
import { UsageError } from './errors.js';
import type { LibraryScript, ScriptRecord } from '../runs/scripts.js';

const enc = encodeURIComponent;
const SCRIPT_NAME = /^[a-z0-9][a-z0-9_-]{0,23}$/;

/** A script file: its text, and a name from the file's (`memtest.sh` → `memtest`) unless given. */
export function readScriptFile(file: string, name?: string): { name: string; content: string } {
  if (!existsSync(file)) throw new UsageError(`${file}: no such file`);
  const content = readFileSync(file, 'utf8');
  if (!content.startsWith('#!')) throw new UsageError(`${file}: a script starts with #! (it is run as a program on the machine)`);
  const n = name ?? basename(file).replace(/\.[A-Za-z0-9]+$/, '').toLowerCase();
  if (!SCRIPT_NAME.test(n)) throw new UsageError(`${file}: '${n}' is not a script name (${SCRIPT_NAME.source}); rename the file${name ? '' : ' or give --name'}`);
  return { name: n, content };
}

/** A flag's whole number of seconds within [min, max]; absent: undefined. */
export function seconds(v: string | undefined, flag: string, min = 1, max = 86_400): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag}: '${v}' must be a whole number of seconds from ${min} to ${max}`);
  return n;
}

/** `plinth script add|list|show|remove`: the script library. */
export const registerScriptCommands: CommandRegistrar = (script, ctx) => {
  script
    .command('add')
    .description('add or replace a library script; --inspect runs it in every inspection (discovery), before the facts')
    .argument('<file>', 'the script (starting with #!)')
    .option('--name <name>', 'its name (default: the file name without extension)')
    .option('--inspect', 'run it in every inspection')
    .option('--timeout <seconds>', 'kill it after this long (default 3600)')
    .option('--description <text>', 'what it is for')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { name?: string; inspect?: boolean; timeout?: string; description?: string; json?: boolean }) => {
      const { name, content } = readScriptFile(file, o.name);
      const timeoutSeconds = seconds(o.timeout, '--timeout');
      const s = await ctx.client().request<LibraryScript>('PUT', `/api/v1/scripts/${enc(name)}`, {
        content,
        inspect: o.inspect ?? false,
        ...(timeoutSeconds ? { timeoutSeconds } : {}),
        ...(o.description ? { description: o.description } : {}),
      });
      if (o.json) return ctx.out.json(s);
      ctx.out.line(`script ${s.name} stored${s.inspect ? ', runs in every inspection' : ''} (timeout ${s.timeoutSeconds} s)`);
    });

  script
    .command('list')
    .alias('ls')
    .description('list the script library')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { items } = await ctx.client().request<{ items: LibraryScript[] }>('GET', '/api/v1/scripts');
      if (o.json) return ctx.out.json(items);
      ctx.out.table(
        items.map((s) => ({ name: s.name, inspect: s.inspect ? 'yes' : 'no', timeout: s.timeoutSeconds, description: s.description, updated: s.updatedAt })),
        ['name', 'inspect', 'timeout', 'description', 'updated'],
      );
    });

  script
    .command('remove')
    .alias('rm')
    .description('remove a library script')
    .argument('<name>', 'the script')
    .action(async (name: string) => {
      await ctx.client().request('DELETE', `/api/v1/scripts/${enc(name)}`);
      ctx.out.line(`script ${name} removed`);
    });
};

/** `plinth machine script NAME --script FILE…`: run scripts on an available machine (commissioning, burn-in, tests). */
export const registerMachineScript: CommandRegistrar = (machine, ctx) => {
  machine
    .command('script')
    .description('run scripts on an available machine in the installer (an inspection that runs these instead of the library\'s); a failing script marks the machine inspect-failed, naming it')
    .argument('<machine>', 'name or id')
    .requiredOption('--script <file>', 'a script (repeatable; run in order)', (v: string, p: string[] = []) => [...p, v], [])
    .option('--timeout <seconds>', 'kill each after this long (default 3600)')
    .option('--reason <text>', 'why (recorded in the history)')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { script: string[]; timeout?: string; reason?: string; json?: boolean }) => {
      const timeoutSeconds = seconds(o.timeout, '--timeout');
      const scripts = o.script.map((f) => ({ ...readScriptFile(f), ...(timeoutSeconds ? { timeoutSeconds } : {}) }));
      const r = await ctx.client().action(key, 'inspect', { scripts, ...(o.reason ? { reason: o.reason } : {}) });
      if (o.json) return ctx.out.json(r);
      ctx.out.line(`${r.machine.name}: ${r.machine.state}${r.run ? ` (run ${r.run.id})` : ''}: ${scripts.map((s) => s.name).join(', ')}`);
    });

  machine
    .command('scripts')
    .description("a machine's script results, newest first")
    .argument('<machine>', 'name or id')
    .option('--output', 'print each result\'s output too')
    .option('--json', 'print JSON')
    .action(async (key: string, o: { output?: boolean; json?: boolean }) => {
      const { items } = await ctx.client().request<{ items: ScriptRecord[] }>('GET', `/api/v1/machines/${enc(key)}/scripts`);
      if (o.json) return ctx.out.json(items);
      ctx.out.table(
        items.map((r) => ({ name: r.name, status: r.status, exit: r.timedOut ? 'timeout' : r.exitCode, seconds: (r.durationMs / 1000).toFixed(1), files: r.files.map((f) => f.name).join(',') || null, run: r.runId, finished: r.finishedAt })),
        ['name', 'status', 'exit', 'seconds', 'files', 'run', 'finished'],
      );
      if (o.output) for (const r of items) ctx.out.line(`--- ${r.name} (run ${r.runId})\n${r.output}`);
    });
};
