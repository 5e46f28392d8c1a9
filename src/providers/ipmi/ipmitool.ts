/**
 * Runs `ipmitool` against one BMC over RMCP+ (`-I lanplus`) and reads its answers.
 *
 * The password travels in the environment (`-E` reads IPMI_PASSWORD), never in argv where
 * `ps` shows it to every user. `-v` is always passed because only the verbose output says
 * *why* a session failed (RAKP HMAC mismatch = wrong password, no answer = unreachable):
 * without it every failure reads "Unable to establish IPMI v2 / RMCP+ session".
 */
import { ProviderError, type Endpoint, type ProviderContext, type ProviderFailure } from '../types.js';
import { runTool, type ToolResult } from '../tool-process.js';

export const IPMI = 'ipmi';

export interface IpmiTarget {
  host: string;
  port: number;
  username: string;
  password: string;
  /** RMCP+ cipher suite (default 3: HMAC-SHA1, AES-CBC-128 — the one every BMC accepts). */
  cipherSuite: number;
  /** ipmitool interface (default lanplus). */
  interface: string;
  /** Privilege level to request (default ADMINISTRATOR; OPERATOR suffices for power). */
  privilege: string | undefined;
  /** The ipmitool executable (default `ipmitool` on PATH). */
  binary: string;
}

/** Parses `host`, `host:port`, `[v6]` or `[v6]:port` (default port 623). */
export function parseIpmiAddress(address: string): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(address.trim());
  if (v6) return { host: v6[1]!, port: v6[2] ? Number(v6[2]) : 623 };
  const parts = address.trim().split(':');
  if (parts.length === 2 && /^\d+$/.test(parts[1]!)) return { host: parts[0]!, port: Number(parts[1]) };
  if (parts.length === 1 && parts[0]) return { host: parts[0], port: 623 };
  if (parts.length > 2) return { host: address.trim(), port: 623 }; // a bare IPv6 address
  throw new ProviderError(IPMI, 'protocol', `'${address}' is not a BMC address (host or host:port)`);
}

export function ipmiTarget(endpoint: Endpoint): IpmiTarget {
  const { host, port } = parseIpmiAddress(endpoint.address);
  const o = endpoint.options ?? {};
  const cipher = o['cipherSuite'];
  return {
    host,
    port,
    username: endpoint.username ?? '',
    password: endpoint.password ?? '',
    cipherSuite: typeof cipher === 'number' ? cipher : typeof cipher === 'string' && /^\d+$/.test(cipher) ? Number(cipher) : 3,
    interface: typeof o['interface'] === 'string' ? o['interface'] : 'lanplus',
    privilege: typeof o['privilege'] === 'string' ? o['privilege'] : undefined,
    binary: typeof o['ipmitool'] === 'string' ? o['ipmitool'] : 'ipmitool',
  };
}

/** Known ipmitool diagnostics → what they mean for the caller. First match wins. */
const DIAGNOSTICS: Array<[RegExp, ProviderFailure, string]> = [
  [/RAKP 2 HMAC is invalid|RAKP \d message indicates an error : (unauthorized name|invalid integrity check value|invalid role)|password invalid|Invalid user name/i, 'auth', 'the BMC refused the user name or password'],
  [/insufficient privilege|Requested privilege level exceeds/i, 'auth', 'the user lacks the privilege for this command'],
  [/invalid (authentication|integrity|confidentiality) algorithm|no matching cipher suite/i, 'protocol', 'the BMC does not accept this cipher suite (endpoint option cipherSuite)'],
  [/Get Auth Capabilities error|No response from remote controller|Error issuing Get Channel Authentication Capabilities/i, 'unreachable', 'the BMC did not answer'],
  [/Insufficient resources for session/i, 'transient', 'the BMC has no free session slot'],
  [/Node busy|timeout/i, 'transient', 'the BMC is busy'],
];

/** Classifies a failed run from its stderr. */
export function classifyIpmiFailure(stderr: string): { failure: ProviderFailure; reason: string } {
  for (const [pattern, failure, reason] of DIAGNOSTICS) if (pattern.test(stderr)) return { failure, reason };
  if (/Unable to establish IPMI v2 \/ RMCP\+ session/i.test(stderr)) return { failure: 'unreachable', reason: 'no RMCP+ session could be established' };
  return { failure: 'protocol', reason: 'ipmitool failed' };
}

/** The last meaningful stderr line (without ipmitool's verbose chatter), for messages. */
export function ipmiDetail(stderr: string): string {
  const noise = /^(Loading IANA PEN Registry|Running Get VSO Capabilities|Invalid completion code received: Invalid command|Discovered IPMB address)/;
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l && !noise.test(l));
  return lines.slice(-2).join(' / ') || 'no detail';
}

/** `Chassis Power is on|off` → state. */
export function parsePowerStatus(stdout: string): 'on' | 'off' | undefined {
  const m = /Chassis Power is (on|off)/i.exec(stdout);
  return m ? (m[1]!.toLowerCase() as 'on' | 'off') : undefined;
}

/**
 * Whether `chassis bootdev` really took effect. NOTE: ipmitool exits 0 even when the BMC
 * rejects the boot parameter ("Set Chassis Boot Parameter 5 failed: ..."): the reply, not
 * the exit code, says whether it worked.
 */
export function bootdevOutcome(result: ToolResult, device: string): { ok: true } | { ok: false; detail: string; unsupported: boolean } {
  const rejected = /(Set Chassis Boot Parameter \d+ failed|Error setting Chassis Boot Parameter)[^\n]*/i.exec(result.stderr);
  if (rejected) return { ok: false, detail: rejected[0], unsupported: /Invalid data field|not supported|Invalid command/i.test(rejected[0]) };
  if (result.exitCode === 0 && new RegExp(`Set Boot Device to ${device}`, 'i').test(result.stdout)) return { ok: true };
  return { ok: false, detail: ipmiDetail(result.stderr), unsupported: false };
}

/** The boot flags a BMC holds (IPMI 2.0 table 28-14, boot option parameter 5). */
export interface BootFlags {
  /** Bit 7 of data 1; see IpmiProvider.setBootDevice for why it is not compared. */
  valid: boolean;
  persistent: boolean;
  efi: boolean;
  /** The device selector in ipmitool's `bootdev` words (`none`, `pxe`, `disk`, `cdrom`…), or `selector N`. */
  device: string;
}

const BOOT_SELECTORS: Record<number, string> = { 0: 'none', 1: 'pxe', 2: 'disk', 3: 'safe', 4: 'diag', 5: 'cdrom', 6: 'bios', 11: 'floppy', 15: 'floppy' };

/** `ipmitool chassis bootparam get 5` → the flags, from its `Boot parameter data:` bytes. */
export function parseBootFlags(stdout: string): BootFlags | undefined {
  const m = /Boot parameter data:\s*([0-9a-f]{4,})/i.exec(stdout);
  if (!m) return undefined;
  const data1 = parseInt(m[1]!.slice(0, 2), 16);
  const data2 = parseInt(m[1]!.slice(2, 4), 16);
  const selector = (data2 >> 2) & 0x0f;
  return { valid: (data1 & 0x80) !== 0, persistent: (data1 & 0x40) !== 0, efi: (data1 & 0x20) !== 0, device: BOOT_SELECTORS[selector] ?? `selector ${selector}` };
}

/** How a BMC's boot flags read to an operator: `pxe, persistent, UEFI`. */
export function describeBootFlags(f: Pick<BootFlags, 'device' | 'persistent' | 'efi'>): string {
  return `${f.device}, ${f.persistent ? 'persistent' : 'next boot only'}, ${f.efi ? 'UEFI' : 'legacy'}`;
}

/**
 * `ipmitool mc guid` → the System GUID, lower case, as ipmitool decoded it. ipmitool 1.8.19
 * guesses the encoding (IPMI, SMBIOS or RFC 4122) from where a valid version nibble sits; when
 * none fits it prints the 16 bytes undecoded (32 hex digits), taken here in the order they came
 * (RFC 4122). Either way the guess may be the other byte order than the host's SMBIOS UUID:
 * identity matching accepts both (inventory/identity.ts, sameUuid).
 */
export function parseGuid(stdout: string): string | undefined {
  const m = /System GUID\s*:\s*([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})\b/i.exec(stdout);
  if (!m) return undefined;
  const v = m[1]!.toLowerCase();
  return v.length === 36 ? v : `${v.slice(0, 8)}-${v.slice(8, 12)}-${v.slice(12, 16)}-${v.slice(16, 20)}-${v.slice(20)}`;
}

/** `ipmitool fru print 0` → its `Key : Value` lines. */
export function parseFru(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^\s*([^:]+?)\s+:\s+(.*\S)\s*$/.exec(line);
    if (m && !(m[1]! in out)) out[m[1]!] = m[2]!;
  }
  return out;
}

export class IpmiTool {
  readonly target: IpmiTarget;

  constructor(target: IpmiTarget) {
    this.target = target;
  }

  /** The connection arguments; the password is not among them. */
  baseArgs(timeoutMs: number): string[] {
    const t = this.target;
    // ipmitool's own retry loop: one-second attempts, as many as fit in the call's budget,
    // so that it gives up on its own before the process is killed.
    const retries = Math.max(1, Math.min(4, Math.floor(timeoutMs / 1000) - 1));
    const args = ['-I', t.interface, '-H', t.host, '-p', String(t.port), '-U', t.username, '-E', '-C', String(t.cipherSuite), '-N', '1', '-R', String(retries), '-v'];
    if (t.privilege) args.push('-L', t.privilege);
    return args;
  }

  /** Runs one ipmitool command; resolves with its output whatever the exit code. */
  async run(args: string[], ctx: ProviderContext): Promise<ToolResult> {
    return runTool({
      provider: IPMI,
      command: this.target.binary,
      args: [...this.baseArgs(ctx.timeoutMs), ...args],
      env: { IPMI_PASSWORD: this.target.password },
      ctx,
      secrets: [this.target.password],
    });
  }

  /** Runs a command and throws a classified ProviderError when it fails. */
  async check(args: string[], ctx: ProviderContext): Promise<ToolResult> {
    const result = await this.run(args, ctx);
    if (result.exitCode !== 0) throw this.failure(args, result);
    return result;
  }

  failure(args: string[], result: ToolResult): ProviderError {
    const { failure, reason } = classifyIpmiFailure(result.stderr);
    const where = `${this.target.host}:${this.target.port}`;
    return new ProviderError(IPMI, failure, `${where}: '${args.join(' ')}': ${reason} (${ipmiDetail(result.stderr)})`);
  }
}
