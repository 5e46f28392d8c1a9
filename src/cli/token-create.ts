import type { CommandRegistrar } from './context.js';
import { UsageError } from './errors.js';

export const registerTokenCreate: CommandRegistrar = (token, ctx) => {
  token
    .command('create')
    .description('create an API token; its secret is printed once')
    .argument('<name>', 'a name for the token')
    .requiredOption('--role <role>', 'admin, operator or reader')
    .option('--expires <iso-date>', 'expiry, e.g. 2027-01-01T00:00:00Z')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { role: string; expires?: string; json?: boolean }) => {
      if (!['admin', 'operator', 'reader'].includes(o.role)) throw new UsageError(`--role: '${o.role}' must be admin, operator or reader`);
      let expiresAt: string | undefined;
      if (o.expires) {
        const d = new Date(o.expires);
        if (Number.isNaN(d.getTime())) throw new UsageError(`--expires: '${o.expires}' is not a date`);
        expiresAt = d.toISOString();
      }
      const r = await ctx.client().createToken({ name, role: o.role, ...(expiresAt ? { expiresAt } : {}) });
      if (o.json) ctx.out.json(r);
      else {
        ctx.out.line(r.token);
        ctx.out.error(`token '${r.record.name}' (${r.record.role}) created; the secret above is not shown again`);
      }
    });
};
