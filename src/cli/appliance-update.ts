import type { CommandRegistrar } from './context.js';
import { onOff, oneOf } from './context.js';
import { BOOT_METHODS } from '../core/boot-method.js';
import { UsageError } from './errors.js';
import { parseProviderOptions, readCredentials, withCredentialOptions, type CredentialFlags } from './appliance-credentials.js';

export const registerApplianceUpdate: CommandRegistrar = (appliance, ctx) => {
  const cmd = appliance
    .command('update')
    .description('change an appliance: a rotated password, its user, address, certificate, options or site (its health is unknown until the next call)')
    .argument('<appliance>', 'name or id')
    .option('--address <address>', 'new address')
    .option('--user <user>', 'new user name')
    .option('--insecure <on|off>', 'skip TLS verification, or verify again')
    .option('--site <site>', "remote site whose manager runs it ('' for the controller)")
    .option('--boot-method <method>', 'how its machines boot into the installer: pxe, http, vmedia')
    .option('--option <key=value>', 'provider options (repeatable); replaces them all', (v: string, p: string[] = []) => [...p, v], [])
    .option('--json', 'print JSON');
  withCredentialOptions(cmd).action(
    async (key: string, o: CredentialFlags & { address?: string; user?: string; insecure?: string; site?: string; bootMethod?: string; option: string[]; json?: boolean }) => {
      const { password, caCert } = await readCredentials(o, ctx, o.user);
      const insecure = onOff(o.insecure, '--insecure');
      const patch: Record<string, unknown> = {
        ...(o.address !== undefined ? { address: o.address } : {}),
        ...(o.user !== undefined ? { username: o.user } : {}),
        ...(password !== undefined ? { password } : {}),
        ...(insecure !== undefined ? { insecure } : {}),
        ...(caCert !== undefined ? { caCert } : {}),
        ...(o.site !== undefined ? { site: o.site || null } : {}),
        ...(o.bootMethod !== undefined ? { bootMethod: oneOf(o.bootMethod, '--boot-method', BOOT_METHODS) } : {}),
        ...(o.option.length ? { options: parseProviderOptions(o.option) } : {}),
      };
      if (Object.keys(patch).length === 0) throw new UsageError('nothing to change: give --password-file, --password-stdin, --ask-password, --user, --address, --insecure, --ca-cert, --site, --boot-method or --option');
      const a = await ctx.client().request<Record<string, unknown>>('PATCH', `/api/v1/appliances/${encodeURIComponent(key)}`, patch);
      if (o.json) ctx.out.json(a);
      else ctx.out.line(`updated ${a.name} (${Object.keys(patch).join(', ')}); health ${a.health} until the next call (plinth appliance check ${a.name})`);
    },
  );
};
