/**
 * Runs `virsh -c URI` for one libvirt connection URI (qemu:///system, qemu+ssh://…,
 * qemu+tcp://…, test:///…). Credentials for URIs that ask for them (SASL over tcp/tls, the
 * libssh transports) go in a libvirt client auth file named by LIBVIRT_AUTH_FILE, written
 * privately for the call and removed after it — never in argv. Transports that use the
 * system `ssh` authenticate with the caller's keys/agent, as ssh always does.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProviderError, type Endpoint, type ProviderContext, type ProviderFailure } from '../types.js';
import { runTool, type ToolResult } from '../tool-process.js';

export const LIBVIRT = 'libvirt';

const DIAGNOSTICS: Array<[RegExp, ProviderFailure]> = [
  [/authentication failed|authentication unavailable|Failed to authenticate|Permission denied|access denied|not authorized/i, 'auth'],
  [/failed to get domain|Domain not found|no domain with matching/i, 'not-found'],
  [/not supported by the connection driver|this function is not supported|unsupported configuration|Operation not supported/i, 'unsupported'],
  [/failed to connect to the hypervisor|Failed to connect socket|Connection refused|No route to host|Cannot recv data|End of file while reading data|unable to connect to server|Connection reset|Network is unreachable|Could not resolve hostname/i, 'unreachable'],
  [/Timed out during operation|cannot acquire state change lock|Resource busy/i, 'transient'],
];

export function classifyVirshFailure(stderr: string): ProviderFailure {
  for (const [pattern, failure] of DIAGNOSTICS) if (pattern.test(stderr)) return failure;
  return 'protocol';
}

/** The `error: …` lines of virsh's stderr, for messages. */
export function virshDetail(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.slice(-2).join(' / ') || 'no detail';
}

/** The contents of a libvirt client auth file for one user and password, any host. */
export function libvirtAuthFile(username: string, password: string): string {
  return [
    '[credentials-plinth]',
    `authname=${username}`,
    `password=${password}`,
    '',
    // SASL (qemu+tcp, qemu+tls) asks as service "libvirt"; the libssh transports as "ssh".
    '[auth-libvirt-default]',
    'credentials=plinth',
    '',
    '[auth-ssh-default]',
    'credentials=plinth',
    '',
  ].join('\n');
}

export class Virsh {
  readonly uri: string;
  private readonly endpoint: Endpoint;
  private readonly binary: string;

  constructor(endpoint: Endpoint) {
    this.endpoint = endpoint;
    this.uri = endpoint.address;
    const binary = endpoint.options?.['virsh'];
    this.binary = typeof binary === 'string' ? binary : 'virsh';
  }

  /** Runs one virsh command; resolves with its output whatever the exit code. */
  async run(args: string[], ctx: ProviderContext): Promise<ToolResult> {
    let authDir: string | undefined;
    const env: Record<string, string> = {};
    if (this.endpoint.password !== undefined) {
      authDir = mkdtempSync(join(tmpdir(), 'plinth-virsh-'));
      const file = join(authDir, 'auth.conf');
      writeFileSync(file, libvirtAuthFile(this.endpoint.username ?? '', this.endpoint.password), { mode: 0o600 });
      env['LIBVIRT_AUTH_FILE'] = file;
    }
    try {
      // --quiet drops the "Domain … started" chatter; -c pins the URI whatever LIBVIRT_DEFAULT_URI says.
      return await runTool({ provider: LIBVIRT, command: this.binary, args: ['--quiet', '-c', this.uri, ...args], env, ctx, secrets: [this.endpoint.password] });
    } finally {
      if (authDir) rmSync(authDir, { recursive: true, force: true });
    }
  }

  /** `virsh define` of a domain definition (read by virsh from a private temporary file). */
  async define(xml: string, ctx: ProviderContext): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'plinth-domain-'));
    try {
      const file = join(dir, 'domain.xml');
      writeFileSync(file, xml, { mode: 0o600 });
      await this.check(['define', file], ctx);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Runs a command and throws a classified ProviderError when it fails. */
  async check(args: string[], ctx: ProviderContext): Promise<string> {
    const result = await this.run(args, ctx);
    if (result.exitCode !== 0) {
      throw new ProviderError(LIBVIRT, classifyVirshFailure(result.stderr), `${this.uri}: 'virsh ${args[0] ?? ''}' failed: ${virshDetail(result.stderr)}`);
    }
    return result.stdout;
  }
}
