import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { UsageError } from './errors.js';

/**
 * How `appliance register` and `appliance update` take a password and a CA bundle: never
 * from a flag (it would show in ps), but from a file, standard input, a prompt or
 * PLINTH_APPLIANCE_PASSWORD.
 */
export interface CredentialFlags {
  passwordFile?: string;
  passwordStdin?: boolean;
  askPassword?: boolean;
  caCert?: string;
}

export function withCredentialOptions(cmd: Command): Command {
  return cmd
    .option('--password-file <file>', 'read the password from this file')
    .option('--password-stdin', 'read the password from standard input')
    .option('--ask-password', 'prompt for the password')
    .option('--ca-cert <file>', 'PEM CA bundle to verify this appliance');
}

/** Reads a password from the terminal without echoing it. */
async function askPassword(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) throw new UsageError('--ask-password needs a terminal; use --password-file FILE, --password-stdin or PLINTH_APPLIANCE_PASSWORD');
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

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function readFlagFile(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`${flag}: cannot read ${file} (${(e as NodeJS.ErrnoException).code})`);
  }
}

/** The password and CA bundle the flags name (each undefined when not given). */
export async function readCredentials(o: CredentialFlags, ctx: CliContext, user: string | undefined): Promise<{ password?: string; caCert?: string }> {
  const sources = [o.passwordFile !== undefined, o.passwordStdin === true, o.askPassword === true].filter(Boolean).length;
  if (sources > 1) throw new UsageError('give one of --password-file, --password-stdin and --ask-password');
  let password: string | undefined;
  if (o.passwordFile !== undefined) password = readFlagFile('--password-file', o.passwordFile).replace(/\r?\n$/, '');
  else if (o.passwordStdin) password = (await readStdin()).replace(/\r?\n$/, '');
  else if (o.askPassword) password = await askPassword(`password for ${user ?? 'the appliance'}: `);
  else if (ctx.env.PLINTH_APPLIANCE_PASSWORD) password = ctx.env.PLINTH_APPLIANCE_PASSWORD;
  if (password !== undefined && password === '' && (o.passwordFile !== undefined || o.passwordStdin)) {
    throw new UsageError(`${o.passwordFile !== undefined ? '--password-file' : '--password-stdin'}: the password is empty`);
  }
  return {
    ...(password !== undefined ? { password } : {}),
    ...(o.caCert !== undefined ? { caCert: readFlagFile('--ca-cert', o.caCert) } : {}),
  };
}

/** `--option key=value` flags as provider options (numbers and booleans typed). */
export function parseProviderOptions(pairs: string[]): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const kv of pairs) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`--option: '${kv}' must be key=value`);
    const v = kv.slice(i + 1);
    options[kv.slice(0, i)] = /^-?\d+$/.test(v) ? Number(v) : v === 'true' ? true : v === 'false' ? false : v;
  }
  return options;
}
