import { readFileSync } from 'node:fs';
import type { CommandRegistrar } from './context.js';
import { UsageError } from './errors.js';
import { PROVIDER_TYPES } from '../providers/types.js';

/** Reads a password from the terminal without echoing it. */
async function askPassword(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) throw new UsageError('--ask-password needs a terminal; use --password-file FILE or PLINTH_APPLIANCE_PASSWORD');
  process.stderr.write(prompt);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let value = '';
    const onData = (ch: string) => {
      if (ch === '\r' || ch === '\n') {
        stdin.setRawMode(false);
        stdin.pause();
        stdin.off('data', onData);
        process.stderr.write('\n');
        resolve(value);
      } else if (ch === '\u0003') {
        stdin.setRawMode(false);
        reject(new UsageError('cancelled'));
      } else if (ch === '\u007f') value = value.slice(0, -1);
      else value += ch;
    };
    stdin.on('data', onData);
  });
}

export const registerApplianceRegister: CommandRegistrar = (appliance, ctx) => {
  appliance
    .command('register')
    .description('register a BMC, hypervisor or lab; the password is never taken from a flag (it would show in ps)')
    .requiredOption('--name <name>', 'a name for the appliance')
    .requiredOption('--type <type>', PROVIDER_TYPES.join('|'))
    .option('--address <address>', 'host[:port] for IPMI, a URL for HTTP APIs, a libvirt URI, a lab directory')
    .option('--uri <uri>', 'same as --address (libvirt)')
    .option('--user <user>', 'user name')
    .option('--password-file <file>', 'read the password from this file')
    .option('--ask-password', 'prompt for the password')
    .option('--insecure', 'do not verify TLS certificates (explicit opt-out)')
    .option('--ca-cert <file>', 'PEM CA bundle to verify this appliance')
    .option('--site <site>', 'remote site whose manager runs this appliance')
    .option('--option <key=value>', 'provider option (repeatable), e.g. cipherSuite=3', (v: string, p: string[] = []) => [...p, v], [])
    .option('--json', 'print JSON')
    .action(async (o: { name: string; type: string; address?: string; uri?: string; user?: string; passwordFile?: string; askPassword?: boolean; insecure?: boolean; caCert?: string; site?: string; option: string[]; json?: boolean }) => {
      const address = o.address ?? o.uri;
      if (!address) throw new UsageError('--address is required (or --uri)');
      if (!(PROVIDER_TYPES as readonly string[]).includes(o.type)) throw new UsageError(`--type: '${o.type}' must be one of ${PROVIDER_TYPES.join(', ')}`);
      let password: string | undefined;
      if (o.passwordFile) {
        try {
          password = readFileSync(o.passwordFile, 'utf8').replace(/\r?\n$/, '');
        } catch (e) {
          throw new UsageError(`--password-file: cannot read ${o.passwordFile} (${(e as NodeJS.ErrnoException).code})`);
        }
      } else if (o.askPassword) {
        password = await askPassword(`password for ${o.user ?? 'the appliance'}: `);
      } else if (ctx.env.PLINTH_APPLIANCE_PASSWORD) {
        password = ctx.env.PLINTH_APPLIANCE_PASSWORD;
      }
      let caCert: string | undefined;
      if (o.caCert) {
        try {
          caCert = readFileSync(o.caCert, 'utf8');
        } catch (e) {
          throw new UsageError(`--ca-cert: cannot read ${o.caCert} (${(e as NodeJS.ErrnoException).code})`);
        }
      }
      const options: Record<string, unknown> = {};
      for (const kv of o.option) {
        const i = kv.indexOf('=');
        if (i <= 0) throw new UsageError(`--option: '${kv}' must be key=value`);
        const v = kv.slice(i + 1);
        options[kv.slice(0, i)] = /^-?\d+$/.test(v) ? Number(v) : v === 'true' ? true : v === 'false' ? false : v;
      }
      const a = await ctx.client().request<Record<string, unknown>>('POST', '/api/v1/appliances', {
        name: o.name,
        type: o.type,
        address,
        ...(o.user ? { username: o.user } : {}),
        ...(password !== undefined ? { password } : {}),
        ...(o.insecure ? { insecure: true } : {}),
        ...(caCert ? { caCert } : {}),
        ...(o.site ? { site: o.site } : {}),
        ...(Object.keys(options).length ? { options } : {}),
      });
      if (o.json) ctx.out.json(a);
      else ctx.out.line(`registered ${a.name} (${a.type} ${a.address})${a.hasPassword ? ', password stored encrypted' : ''}`);
    });
};
