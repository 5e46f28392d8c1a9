import type { CommandRegistrar } from './context.js';
import { UsageError } from './errors.js';
import { oneOf } from './context.js';
import { BOOT_METHODS } from '../core/boot-method.js';
import { parseProviderOptions, readCredentials, withCredentialOptions, type CredentialFlags } from './appliance-credentials.js';
import { PROVIDER_TYPES } from '../providers/types.js';

export const registerApplianceRegister: CommandRegistrar = (appliance, ctx) => {
  const cmd = appliance
    .command('register')
    .description('register a BMC, hypervisor or lab; the password is never taken from a flag (it would show in ps)')
    .requiredOption('--name <name>', 'a name for the appliance')
    .requiredOption('--type <type>', PROVIDER_TYPES.join('|'))
    .option('--address <address>', 'host[:port] for IPMI, a URL for HTTP APIs, a libvirt URI, a lab directory')
    .option('--uri <uri>', 'same as --address (libvirt)')
    .option('--user <user>', 'user name')
    .option('--insecure', 'do not verify TLS certificates (explicit opt-out)')
    .option('--site <site>', 'remote site whose manager runs this appliance')
    .option('--boot-method <method>', 'how its machines boot into the installer: pxe (default), http, vmedia (the installer ISO as virtual media)')
    .option('--option <key=value>', 'provider option (repeatable), e.g. cipherSuite=3', (v: string, p: string[] = []) => [...p, v], [])
    .option('--json', 'print JSON');
  withCredentialOptions(cmd).action(
    async (o: CredentialFlags & { name: string; type: string; address?: string; uri?: string; user?: string; insecure?: boolean; site?: string; bootMethod?: string; option: string[]; json?: boolean }) => {
      const address = o.address ?? o.uri;
      if (!address) throw new UsageError('--address is required (or --uri)');
      if (!(PROVIDER_TYPES as readonly string[]).includes(o.type)) throw new UsageError(`--type: '${o.type}' must be one of ${PROVIDER_TYPES.join(', ')}`);
      const { password, caCert } = await readCredentials(o, ctx, o.user);
      const options = parseProviderOptions(o.option);
      const a = await ctx.client().request<Record<string, unknown>>('POST', '/api/v1/appliances', {
        name: o.name,
        type: o.type,
        address,
        ...(o.user ? { username: o.user } : {}),
        ...(password !== undefined ? { password } : {}),
        ...(o.insecure ? { insecure: true } : {}),
        ...(caCert ? { caCert } : {}),
        ...(o.site ? { site: o.site } : {}),
        ...(o.bootMethod ? { bootMethod: oneOf(o.bootMethod, '--boot-method', BOOT_METHODS) } : {}),
        ...(Object.keys(options).length ? { options } : {}),
      });
      if (o.json) ctx.out.json(a);
      else ctx.out.line(`registered ${a.name} (${a.type} ${a.address})${a.hasPassword ? ', password stored encrypted' : ''}`);
    },
  );
};
