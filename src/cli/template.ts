import { readFileSync } from 'node:fs';
import type { CommandRegistrar } from './context.js';
import { UsageError } from './errors.js';
import { TEMPLATE_KINDS } from '../templates/index.js';

const scopeQuery = (o: { profile?: string; machine?: string }) => {
  if (o.profile && o.machine) throw new UsageError('give --profile or --machine, not both');
  const q: Record<string, string> = o.profile ? { scope: 'profile', owner: o.profile } : o.machine ? { scope: 'machine', owner: o.machine } : { scope: 'site' };
  return new URLSearchParams(q).toString();
};
const checkKind = (kind: string) => {
  if (!(TEMPLATE_KINDS as readonly string[]).includes(kind)) throw new UsageError(`'${kind}' is not a template kind (${TEMPLATE_KINDS.join(', ')})`);
};

/** `plinth template render|set|list|delete`. */
export const registerTemplateCommands: CommandRegistrar = (template, ctx) => {
  template
    .command('render')
    .description('preview what a deploy of a machine would receive')
    .argument('<kind>', TEMPLATE_KINDS.join('|'))
    .requiredOption('--machine <machine>', 'the machine')
    .option('--name <name>', 'one template of the kind (needed for ipxe and script)')
    .option('--json', 'print JSON')
    .action(async (kind: string, o: { machine: string; name?: string; json?: boolean }) => {
      checkKind(kind);
      const { artifacts } = await ctx.client().request<{ artifacts: Record<string, string> }>('POST', `/api/v1/templates/${kind}/render`, { machine: o.machine, ...(o.name ? { name: o.name } : {}) });
      if (o.json) return ctx.out.json(artifacts);
      for (const [name, body] of Object.entries(artifacts)) ctx.out.line(`--- ${kind}/${name}\n${body.trimEnd()}`);
    });
  template
    .command('set')
    .description('override a template or snippet for the site (default), a profile or a machine')
    .argument('<kind>', TEMPLATE_KINDS.join('|'))
    .argument('<name>', 'template or snippet name')
    .requiredOption('-f, --file <file>', 'the template text')
    .option('--profile <profile>', 'only for machines of this profile')
    .option('--machine <machine>', 'only for this machine')
    .action(async (kind: string, name: string, o: { file: string; profile?: string; machine?: string }) => {
      checkKind(kind);
      let body: string;
      try {
        body = readFileSync(o.file, 'utf8');
      } catch (e) {
        throw new UsageError(`--file: cannot read ${o.file} (${(e as NodeJS.ErrnoException).code})`);
      }
      const r = await ctx.client().request<{ scope: string; owner: string | null }>('PUT', `/api/v1/templates/${kind}/${encodeURIComponent(name)}?${scopeQuery(o)}`, { body });
      ctx.out.line(`${kind}/${name} overridden for ${r.scope}${r.owner ? ` ${o.profile ?? o.machine}` : ''}`);
    });
  template
    .command('list')
    .alias('ls')
    .description('list stored overrides')
    .option('--kind <kind>', 'only this kind')
    .option('--json', 'print JSON')
    .action(async (o: { kind?: string; json?: boolean }) => {
      const { items } = await ctx.client().request<{ items: Record<string, unknown>[] }>('GET', '/api/v1/templates', undefined, o.kind ? { kind: o.kind } : {});
      if (o.json) return ctx.out.json(items);
      ctx.out.table(items, ['kind', 'name', 'scope', 'owner', 'updatedAt']);
    });
  template
    .command('delete')
    .alias('rm')
    .description('remove an override')
    .argument('<kind>', TEMPLATE_KINDS.join('|'))
    .argument('<name>', 'template or snippet name')
    .option('--profile <profile>', 'the profile\'s override')
    .option('--machine <machine>', 'the machine\'s override')
    .action(async (kind: string, name: string, o: { profile?: string; machine?: string }) => {
      checkKind(kind);
      await ctx.client().request('DELETE', `/api/v1/templates/${kind}/${encodeURIComponent(name)}?${scopeQuery(o)}`);
      ctx.out.line(`removed ${kind}/${name}`);
    });
};
