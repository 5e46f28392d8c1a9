import { isIP, isIPv4 } from 'node:net';
import { validation } from '../core/errors.js';
import { DISK_NAME_PATTERN, NIC_NAME_PATTERN, type Facts } from '../core/facts.js';
import { normalizeMac } from '../core/mac.js';
import type { Identity } from '../inventory/identity.js';
import type { RunKind } from '../core/states.js';
import { KERNEL_ARGS_PATTERN, OS_SETTING_PATTERNS } from '../protocol/deploy.js';

/**
 * What a template sees, documented field by field in docs/templates.md. It is plain data
 * (JSON values only): templates cannot call anything, and the same context always renders the
 * same bytes. `buildRenderContext` is the one place that decides its derived fields: the
 * hostname, the primary NIC, the static network, the root disk and every default.
 */
export interface RenderContext {
  machine: RenderMachine;
  /** The matched profile's name, or null when the machine matched none. */
  profile: string | null;
  /** Variables from the profile's match and the pool entry: hostname, ip, netmask, … and any other key. */
  vars: Record<string, unknown>;
  run: { id: string; kind: RunKind };
  controller: RenderController;
  /** The run token. Secret: templates put it only where the installer or installed OS reports back. */
  token: string;
  ssh: { authorizedKeys: string[]; rootLogin: boolean };
  network: RenderNetwork;
  /** The disk the OS goes on, or null when the machine reported none. */
  disk: RenderDisk | null;
  /** The short host name (one label). */
  hostname: string;
  /** The DNS domain, or null when neither vars.hostname nor vars.domain gives one. */
  domain: string | null;
  /** hostname.domain, or null without a domain. */
  fqdn: string | null;
  os: OsSettings;
}

export interface RenderMachine {
  id: string;
  name: string;
  identity: Identity;
  tags: Record<string, string>;
  /** The facts document of the last inspection, or null for a machine never inspected. */
  facts: Facts | null;
  owner: string | null;
  /** The CPU architecture as the kernel names it (x86_64, aarch64); x86_64 without facts. */
  architecture: string;
  /** Firmware boot mode from the facts, or null without facts. */
  bootMode: 'uefi' | 'bios' | null;
}

export interface RenderController {
  /** The controller's public base URL, without a trailing slash. */
  baseUrl: string;
  /** Where the installer or installed OS POSTs when it is done, with `Authorization: Bearer <token>`. */
  phoneHomeUrl: string;
  /** The OS image the run writes, or null for installer-native methods. */
  imageUrl: string | null;
  /** Prefix under which this run's rendered artifacts are served: `{artifactsUrl}/{kind}/{name}`. */
  artifactsUrl: string;
}

export interface RenderNic {
  /** A key for configuration formats: the NIC name when known, else `nic0`, `nic1`, … */
  id: string;
  /** The kernel's name for the NIC from the facts, or null when only its MAC is known. */
  name: string | null;
  mac: string;
  link: boolean;
  ipv4: string[];
  primary: boolean;
  /** The static settings when this is the NIC they apply to, else null (DHCP). */
  static: StaticNetwork | null;
}

export interface StaticNetwork {
  /** The `id` of the NIC the settings apply to (the primary NIC). */
  nic: string;
  mac: string;
  address: string;
  prefix: number;
  netmask: string;
  /** address/prefix */
  cidr: string;
  gateway: string | null;
  dns: string[];
  search: string[];
}

export interface RenderNetwork {
  /** The NIC the installer and the installed OS reach the controller through; null with no NIC known. */
  primary: RenderNic | null;
  nics: RenderNic[];
  /** Static settings from the variables, or null for DHCP everywhere. */
  static: StaticNetwork | null;
}

export interface RenderDisk {
  name: string;
  /** /dev/NAME */
  path: string;
  /** /dev/disk/by-id/wwn-… when the disk reported a WWN, else null: a name like sda can change between boots. */
  idPath: string | null;
  /** idPath when there is one, else path: what installers should be pointed at. */
  stablePath: string;
  sizeBytes: number | null;
  model: string | null;
  serial: string | null;
  wwn: string | null;
  rotational: boolean | null;
}

/** A few knobs for installers and installed systems. */
export interface OsSettings {
  /** Package mirror or installation tree URL; null lets each template use its installer's default. */
  mirror: string | null;
  /** Distribution release (bookworm); null lets templates use their default. */
  suite: string | null;
  timezone: string;
  locale: string;
  keyboard: string;
  /** The default user, created with a locked password and the SSH keys. */
  user: string;
  /** Extra packages to install. */
  packages: string[];
  /** Console arguments for installer and installed kernels. */
  console: string;
  /** More arguments for the installed system's kernel (the profile's or the deploy's `kernelArgs`); '' for none. */
  kernelArgs: string;
  /** Installer kernel, initrd and ISO for the iPXE templates that cannot derive them from the mirror. */
  kernelUrl: string | null;
  initrdUrl: string | null;
  isoUrl: string | null;
}

export interface RenderContextInput {
  machine: {
    id: string;
    name: string;
    identity: Identity;
    tags?: Record<string, string> | undefined;
    facts: Facts | null;
    owner?: string | null | undefined;
  };
  profile?: string | null | undefined;
  vars?: Record<string, unknown> | undefined;
  run: { id: string; kind: RunKind };
  controller: { baseUrl: string; phoneHomeUrl?: string | undefined; imageUrl?: string | null | undefined; artifactsUrl?: string | undefined };
  token: string;
  /** Site-wide keys first, then the keys given for this deploy; duplicates are dropped. */
  ssh?: { siteKeys?: string[] | undefined; deployKeys?: string[] | undefined; rootLogin?: boolean | undefined } | undefined;
  os?: Partial<OsSettings> | undefined;
}

export const OS_DEFAULTS: OsSettings = {
  mirror: null,
  suite: null,
  timezone: 'Etc/UTC',
  locale: 'en_US.UTF-8',
  keyboard: 'us',
  user: 'plinth',
  packages: [],
  // Serial last: the last console= is /dev/console, and the serial log is what explains a failed deploy.
  console: 'console=tty0 console=ttyS0,115200n8',
  kernelArgs: '',
  kernelUrl: null,
  initrdUrl: null,
  isoUrl: null,
};

/** Fills defaults and derives the fields templates rely on; invalid input is a validation error. */
export function buildRenderContext(input: RenderContextInput): RenderContext {
  const vars = plainData(input.vars ?? {}, 'vars') as Record<string, unknown>;
  const facts = input.machine.facts;
  const token = checked('token', input.token, SAFE_WORD, 'letters, digits, "_" and "-"');
  const run = { id: checked('run.id', input.run.id, SAFE_WORD, 'letters, digits, "_" and "-"'), kind: input.run.kind };
  const { hostname, domain } = hostnameOf(vars, input.machine.name);
  const nics = nicsOf(facts, input.machine.identity);
  const primary = primaryNic(nics, vars);
  const staticSettings = staticNetwork(vars, primary, domain);
  for (const nic of nics) {
    nic.primary = nic === primary;
    nic.static = staticSettings !== null && nic === primary ? staticSettings : null;
  }
  const baseUrl = url('controller.baseUrl', input.controller.baseUrl).replace(/\/+$/, '');
  return {
    machine: {
      id: input.machine.id,
      name: input.machine.name,
      identity: { ...input.machine.identity, macs: [...input.machine.identity.macs] },
      tags: { ...(input.machine.tags ?? {}) },
      facts: facts === null ? null : (plainData(facts, 'machine.facts') as Facts),
      owner: input.machine.owner ?? null,
      architecture: facts?.cpu.architecture || 'x86_64',
      bootMode: facts?.firmware.bootMode ?? null,
    },
    profile: input.profile ?? null,
    vars,
    run,
    controller: {
      baseUrl,
      phoneHomeUrl: url('controller.phoneHomeUrl', input.controller.phoneHomeUrl ?? `${baseUrl}/agent/v1/installed`),
      imageUrl: input.controller.imageUrl ? url('controller.imageUrl', input.controller.imageUrl) : null,
      artifactsUrl: url('controller.artifactsUrl', input.controller.artifactsUrl ?? `${baseUrl}/boot/artifacts/${token}`).replace(/\/+$/, ''),
    },
    token,
    ssh: { authorizedKeys: authorizedKeys(input.ssh?.siteKeys ?? [], input.ssh?.deployKeys ?? []), rootLogin: input.ssh?.rootLogin ?? false },
    network: { primary, nics, static: staticSettings },
    disk: rootDisk(facts, vars),
    hostname,
    domain,
    fqdn: domain === null ? null : `${hostname}.${domain}`,
    os: osSettings(input.os ?? {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Values that end up inside line-based formats (preseed, kickstart, kernel command lines) must
// not be able to start a new line or a new argument; these checks are what lets templates
// insert them without quoting.

const SAFE_WORD = /^[A-Za-z0-9_-]+$/;
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const NO_SPACE = /^[^\s'"\\`$;|<>]+$/;

function checked(field: string, value: unknown, pattern: RegExp, what: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) throw validation(field, `${JSON.stringify(value)} is not valid: expected ${what}`);
  return value;
}

function url(field: string, value: string): string {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw validation(field, `'${value}' is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw validation(field, `'${value}' is not an http or https URL`);
  return checked(field, value, NO_SPACE, 'a URL without spaces, quotes, \\, `, $, ;, | < or >');
}

/** Copies a value as JSON data, so nothing callable or class-shaped reaches a template. */
function plainData(value: unknown, field: string): unknown {
  try {
    return JSON.parse(JSON.stringify(value)) as unknown;
  } catch (e) {
    throw validation(field, `must be JSON data: ${(e as Error).message}`);
  }
}

function hostnameOf(vars: Record<string, unknown>, machineName: string): { hostname: string; domain: string | null } {
  const given = vars['hostname'];
  if (given !== undefined && given !== null && typeof given !== 'string') throw validation('vars.hostname', 'must be a string');
  // Without a profile or pool entry the installed OS is named as Plinth names the machine.
  const fromVars = typeof given === 'string' && given.trim() !== '';
  const full = (fromVars ? given.trim() : machineName).toLowerCase().replace(/\.$/, '');
  const field = fromVars ? 'vars.hostname' : 'machine.name';
  const [first, ...rest] = full.split('.');
  const hostname = first ?? '';
  if (!LABEL.test(hostname)) throw validation(field, `'${full}' is not a valid host name (letters, digits and hyphens, 1-63 per label)`);
  let domain: string | null = rest.length > 0 ? rest.join('.') : null;
  if (domain === null && typeof vars['domain'] === 'string' && vars['domain'].trim() !== '') domain = vars['domain'].trim().toLowerCase().replace(/\.$/, '');
  if (domain !== null && (!domain.split('.').every((l) => LABEL.test(l)) || hostname.length + 1 + domain.length > 253)) {
    throw validation(rest.length > 0 ? field : 'vars.domain', `'${domain}' is not a valid DNS domain`);
  }
  return { hostname, domain };
}

// A NIC name the facts did not validate (stored before they were) is not used: the NIC gets an id.
const NIC_NAME = new RegExp(NIC_NAME_PATTERN);
const DISK_NAME = new RegExp(DISK_NAME_PATTERN);

function nicsOf(facts: Facts | null, identity: Identity): RenderNic[] {
  const nics: RenderNic[] = [];
  const seen = new Set<string>();
  const add = (name: string | null, rawMac: string, link: boolean, ipv4: string[]) => {
    const mac = normalizeMac(rawMac);
    if (mac === null || seen.has(mac)) return;
    seen.add(mac);
    const usableName = name !== null && NIC_NAME.test(name) ? name : null;
    nics.push({ id: usableName ?? `nic${nics.length}`, name: usableName, mac, link, ipv4: [...ipv4], primary: false, static: null });
  };
  if (facts !== null) for (const nic of facts.nics) add(nic.name, nic.mac, nic.link, nic.ipv4);
  else for (const mac of identity.macs) add(null, mac, false, []);
  return nics;
}

/** vars.mac names it when it is one of the machine's NICs; else the NIC with link and an IPv4 address; else the first. */
function primaryNic(nics: RenderNic[], vars: Record<string, unknown>): RenderNic | null {
  const wanted = typeof vars['mac'] === 'string' ? normalizeMac(vars['mac']) : null;
  return nics.find((n) => n.mac === wanted) ?? nics.find((n) => n.link && n.ipv4.length > 0) ?? nics[0] ?? null;
}

function staticNetwork(vars: Record<string, unknown>, primary: RenderNic | null, domain: string | null): StaticNetwork | null {
  const ip = vars['ip'];
  if (ip === undefined || ip === null || ip === '') return null;
  if (typeof ip !== 'string') throw validation('vars.ip', 'must be a string');
  const [address = '', cidrPrefix] = ip.trim().split('/');
  if (!isIPv4(address)) throw validation('vars.ip', `'${ip}' is not an IPv4 address (the built-in templates configure static IPv4 only)`);
  const prefixes: number[] = [];
  if (cidrPrefix !== undefined) prefixes.push(prefixNumber('vars.ip', cidrPrefix));
  if (vars['prefix'] !== undefined && vars['prefix'] !== null && vars['prefix'] !== '') prefixes.push(prefixNumber('vars.prefix', vars['prefix']));
  if (typeof vars['netmask'] === 'string' && vars['netmask'] !== '') prefixes.push(netmaskPrefix(vars['netmask']));
  const prefix = prefixes[0];
  if (prefix === undefined) throw validation('vars.netmask', 'vars.ip is set but neither vars.netmask nor vars.prefix (nor an address/prefix in vars.ip) is');
  if (prefixes.some((p) => p !== prefix)) throw validation('vars.netmask', `the netmask and prefix in the variables disagree (${prefixes.map((p) => `/${p}`).join(' vs ')})`);
  let gateway: string | null = null;
  if (vars['gateway'] !== undefined && vars['gateway'] !== null && vars['gateway'] !== '') {
    if (typeof vars['gateway'] !== 'string' || !isIPv4(vars['gateway'])) throw validation('vars.gateway', `${JSON.stringify(vars['gateway'])} is not an IPv4 address`);
    gateway = vars['gateway'];
  }
  const dns = listOf('vars.dns', vars['dns']);
  for (const server of dns) if (isIP(server) === 0) throw validation('vars.dns', `'${server}' is not an IP address`);
  const search = vars['search'] !== undefined ? listOf('vars.search', vars['search']) : domain !== null ? [domain] : [];
  for (const d of search) if (!d.split('.').every((l) => LABEL.test(l.toLowerCase()))) throw validation('vars.search', `'${d}' is not a DNS domain`);
  if (primary === null) throw validation('vars.ip', 'a static address is set but no NIC of the machine is known');
  return { nic: primary.id, mac: primary.mac, address, prefix, netmask: prefixNetmask(prefix), cidr: `${address}/${prefix}`, gateway, dns, search };
}

function prefixNumber(field: string, value: unknown): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,2}$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 32) throw validation(field, `${JSON.stringify(value)} is not an IPv4 prefix length (0-32)`);
  return n;
}

function netmaskPrefix(netmask: string): number {
  if (!isIPv4(netmask)) throw validation('vars.netmask', `'${netmask}' is not a netmask`);
  const bits = netmask.split('.').map((o) => Number(o).toString(2).padStart(8, '0')).join('');
  if (!/^1*0*$/.test(bits)) throw validation('vars.netmask', `'${netmask}' is not a contiguous netmask`);
  return bits.indexOf('0') === -1 ? 32 : bits.indexOf('0');
}

function prefixNetmask(prefix: number): string {
  const bits = '1'.repeat(prefix).padEnd(32, '0');
  return [0, 8, 16, 24].map((i) => parseInt(bits.slice(i, i + 8), 2)).join('.');
}

/** Pool variables come as lists or as one string separated by commas or spaces. */
function listOf(field: string, value: unknown): string[] {
  if (value === undefined || value === null || value === '') return [];
  const items = typeof value === 'string' ? value.split(/[\s,]+/) : Array.isArray(value) ? value : null;
  if (items === null || !items.every((i): i is string => typeof i === 'string')) throw validation(field, 'must be a string or a list of strings');
  return items.map((i) => i.trim()).filter((i) => i !== '');
}

/** vars.disk (a name or /dev path) when given; else the first disk that is not removable; else the first disk. */
function rootDisk(facts: Facts | null, vars: Record<string, unknown>): RenderDisk | null {
  const disks = facts?.disks ?? [];
  // Checked again here, not only on arrival: facts stored before that check still reach templates.
  disks.forEach((d, i) => checked(`machine.facts.disks[${i}].name`, d.name, DISK_NAME, 'a kernel disk name (letters, digits, . _ : + / -)'));
  const removable = new Set((facts?.hw ?? []).filter(([c, , a, v]) => c === 'disk' && a === 'removable' && v === '1').map(([, name]) => name));
  const wanted = vars['disk'];
  if (wanted !== undefined && wanted !== null && wanted !== '') {
    const spec = checked('vars.disk', wanted, /^[A-Za-z0-9/_.:+-]+$/, 'a disk name or /dev path');
    const match = disks.find((d) => spec === d.name || spec === `/dev/${d.name}` || (d.wwn !== null && spec === wwnPath(d.wwn)));
    if (match) return renderDisk(match);
    // A path the facts cannot confirm (by-path, by-id) is the operator's to answer for.
    if (spec.startsWith('/dev/')) {
      return { name: spec.slice(spec.lastIndexOf('/') + 1), path: spec, idPath: spec.startsWith('/dev/disk/') ? spec : null, stablePath: spec, sizeBytes: null, model: null, serial: null, wwn: null, rotational: null };
    }
    throw validation('vars.disk', `'${spec}' is not one of the machine's disks (${disks.map((d) => d.name).join(', ') || 'none reported'})`);
  }
  const chosen = disks.find((d) => !removable.has(d.name)) ?? disks[0];
  return chosen ? renderDisk(chosen) : null;
}

// NOTE: only SCSI/SATA-style WWNs ("0x…") have a predictable by-id link (wwn-0x…); NVMe EUIs do not.
const wwnPath = (wwn: string): string | null => (/^0x[0-9a-f]+$/i.test(wwn) ? `/dev/disk/by-id/wwn-${wwn.toLowerCase()}` : null);

function renderDisk(d: Facts['disks'][number]): RenderDisk {
  const idPath = d.wwn === null ? null : wwnPath(d.wwn);
  const path = `/dev/${d.name}`;
  return { name: d.name, path, idPath, stablePath: idPath ?? path, sizeBytes: d.sizeBytes, model: d.model, serial: d.serial, wwn: d.wwn, rotational: d.rotational };
}

const SSH_KEY_TYPE = /(^|\s)(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+)\s+[A-Za-z0-9+/=]+(\s|$)/;

function authorizedKeys(siteKeys: string[], deployKeys: string[]): string[] {
  const keys: string[] = [];
  for (const [i, raw] of [...siteKeys, ...deployKeys].entries()) {
    const key = raw.trim();
    // Keys land on preseed and kickstart lines and in shell commands: one line, no backslashes.
    if (/[\x00-\x1f\x7f\\]/.test(key) || !SSH_KEY_TYPE.test(key)) throw validation('ssh', `key ${i + 1} is not a one-line OpenSSH public key`);
    if (!keys.includes(key)) keys.push(key);
  }
  return keys;
}

function osSettings(given: Partial<OsSettings>): OsSettings {
  const os = { ...OS_DEFAULTS, ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) } as OsSettings;
  const optionalUrl = (field: keyof OsSettings) => {
    const value = os[field];
    return value === null || value === '' ? null : url(`os.${field}`, String(value));
  };
  return {
    mirror: optionalUrl('mirror')?.replace(/\/+$/, '') ?? null,
    suite: os.suite === null || os.suite === '' ? null : checked('os.suite', os.suite, new RegExp(OS_SETTING_PATTERNS.suite), 'a release name'),
    timezone: checked('os.timezone', os.timezone, new RegExp(OS_SETTING_PATTERNS.timezone), 'a time zone name like Etc/UTC'),
    locale: checked('os.locale', os.locale, new RegExp(OS_SETTING_PATTERNS.locale), 'a locale like en_US.UTF-8'),
    keyboard: checked('os.keyboard', os.keyboard, new RegExp(OS_SETTING_PATTERNS.keyboard), 'a keyboard layout like us'),
    user: checked('os.user', os.user, new RegExp(OS_SETTING_PATTERNS.user), 'a user name (lower case, at most 32 characters)'),
    packages: (Array.isArray(os.packages) ? os.packages : []).map((p, i) => checked(`os.packages[${i}]`, p, new RegExp(OS_SETTING_PATTERNS.package), 'a package or group name')),
    console: checked('os.console', os.console, new RegExp(OS_SETTING_PATTERNS.console), 'kernel arguments (letters, digits, = , . _ / : -)'),
    kernelArgs: checked('kernelArgs', os.kernelArgs, new RegExp(KERNEL_ARGS_PATTERN), 'kernel arguments without quotes, \\, `, $, ;, |, < or >').trim().replace(/ +/g, ' '),
    kernelUrl: optionalUrl('kernelUrl'),
    initrdUrl: optionalUrl('initrdUrl'),
    isoUrl: optionalUrl('isoUrl'),
  };
}
