import { readFileSync, existsSync } from 'node:fs';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import Value from 'typebox/value';
import { ConfigSchema, DURATION_PATTERN, type Config, type ConfigDocument } from './schema.js';
import { parseDuration } from '../core/clock.js';
import { parseDhcpRange } from './dhcp-range.js';
import { PlinthError } from '../core/errors.js';

type Json = Record<string, unknown>;

export interface ConfigSources {
  /** Path of a plinth.yaml; missing file is fine when it was not asked for explicitly. */
  file?: string | undefined;
  fileRequired?: boolean;
  env?: Record<string, string | undefined>;
  flags?: Json;
}

/** `deadlines.deploy-wait` → `PLINTH_DEADLINES_DEPLOY_WAIT`. */
export function envName(path: string[]): string {
  return (
    'PLINTH_' +
    path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replaceAll('-', '_').toUpperCase()).join('_')
  );
}

interface Leaf {
  path: string[];
  schema: Json;
}

function leaves(schema: Json, prefix: string[] = []): Leaf[] {
  if (schema.type === 'object' && schema.properties) {
    return Object.entries(schema.properties as Record<string, Json>).flatMap(([k, s]) => leaves(s, [...prefix, k]));
  }
  return [{ path: prefix, schema }];
}

/** Every configuration key with its environment name, default and description (for docs and `plinth config`). */
export function describeConfig(): { key: string; env: string; default: unknown; description: string }[] {
  return leaves(ConfigSchema as unknown as Json).map(({ path, schema }) => ({
    key: path.join('.'),
    env: envName(path),
    default: schema.default,
    description: String(schema.description ?? ''),
  }));
}

function setPath(target: Json, path: string[], value: unknown): void {
  let node = target;
  for (const seg of path.slice(0, -1)) {
    if (typeof node[seg] !== 'object' || node[seg] === null) node[seg] = {};
    node = node[seg] as Json;
  }
  node[path[path.length - 1]!] = value;
}

function merge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)
        ? merge(b as Json, v as Json)
        : v;
  }
  return out;
}

/** Loads, merges and validates configuration. Only entry points call this with process.env. */
export function loadConfig(sources: ConfigSources = {}): Config {
  let fromFile: Json = {};
  if (sources.file) {
    if (existsSync(sources.file)) {
      let parsed: unknown;
      try {
        parsed = parseYaml(readFileSync(sources.file, 'utf8'));
      } catch (e) {
        throw new PlinthError('validation', `${sources.file}: ${(e as Error).message}`, { cause: e });
      }
      if (parsed !== null && parsed !== undefined && (typeof parsed !== 'object' || Array.isArray(parsed))) {
        throw new PlinthError('validation', `${sources.file}: expected a mapping of configuration keys`);
      }
      fromFile = (parsed ?? {}) as Json;
    } else if (sources.fileRequired) {
      throw new PlinthError('validation', `configuration file ${sources.file} does not exist`);
    }
  }

  const fromEnv: Json = {};
  const env = sources.env ?? {};
  for (const { path, schema } of leaves(ConfigSchema as unknown as Json)) {
    const raw = env[envName(path)];
    if (raw === undefined || raw === '') continue;
    const value = schema.type === 'integer' || schema.type === 'number' ? Number(raw) : schema.type === 'boolean' ? ['1', 'true', 'yes', 'on'].includes(raw.toLowerCase()) : raw;
    setPath(fromEnv, path, value);
  }

  const merged = merge(merge(fromFile, fromEnv), sources.flags ?? {});
  const withDefaults = Value.Default(ConfigSchema, structuredClone(merged)) as Json;
  const errors = [...Value.Errors(ConfigSchema, withDefaults)];
  if (errors.length > 0) {
    // TypeBox reports an unknown key twice (as a `false` schema and as additionalProperties): prefer the clearer one.
    const e =
      errors.find((x) => x.keyword === 'additionalProperties') ??
      errors.find((x) => x.keyword !== 'required' && x.keyword !== 'boolean') ??
      errors[0]!;
    const where = e.instancePath.replace(/^\//, '').replaceAll('/', '.') || 'configuration';
    const extra =
      e.keyword === 'additionalProperties'
        ? `unknown key(s) ${JSON.stringify((e.params as { additionalProperties?: string[] }).additionalProperties)}`
        : e.message;
    throw new PlinthError('validation', `invalid configuration ${where}: ${extra}`, { details: { field: where } });
  }
  const config = withDefaults as ConfigDocument;
  checkDhcp(config.dhcp);
  checkVmedia(config);
  const ms = milliseconds(config);
  checkWebhookLease(ms.webhooks);
  return { ...config, dataDir: resolve(config.dataDir), ms };
}

/**
 * A webhook delivery's lease must outlast its send. The sender never renews a claim: the lease
 * runs from the claim to the outcome's write, across the event's read, the POST (cut at
 * `webhooks.timeout`) and that write. A lease that ends first hands a send still under way to
 * another controller (or this one), which POSTs it again: a duplicate no stopped controller
 * caused. The database work on either side of the POST, a busy event loop's late timers and
 * the skew between controllers' clocks have no setting that bounds them, so the margin is as
 * long again as the POST: lease ≥ 2 × timeout (the defaults, 60 s and 10 s, are far inside;
 * a test's short lease keeps the proportion).
 */
const WEBHOOK_LEASE_PER_TIMEOUT = 2;

function checkWebhookLease(webhooks: Config['ms']['webhooks']): void {
  if (webhooks.lease >= WEBHOOK_LEASE_PER_TIMEOUT * webhooks.timeout) return;
  throw new PlinthError(
    'validation',
    `invalid configuration webhooks.lease: ${webhooks.lease} ms is shorter than ${WEBHOOK_LEASE_PER_TIMEOUT} × webhooks.timeout (${webhooks.timeout} ms); a POST still under way would outlive its claim and be sent again by another controller`,
    { details: { field: 'webhooks.lease', fields: ['webhooks.lease', 'webhooks.timeout'] } },
  );
}

/** A static boot network for virtual media: where no DHCP server is Plinth's, and its gateway inside it. */
function checkVmedia(config: ConfigDocument): void {
  const { network, gateway, dns } = config.vmedia;
  const fail = (field: string, why: string) => {
    throw new PlinthError('validation', `invalid configuration vmedia.${field}: ${why}`, { details: { field: `vmedia.${field}` } });
  };
  if (!network) {
    if (gateway || dns) fail(gateway ? 'gateway' : 'dns', 'needs vmedia.network (PLINTH_VMEDIA_NETWORK), the subnet it belongs to');
    return;
  }
  if (config.dhcp.mode === 'full') fail('network', 'dhcp.mode full already defines the provisioning network (dhcp.range, dhcp.gateway, dhcp.dns); leave vmedia.* empty');
  if (gateway) {
    const [base, bits] = network.split('/') as [string, string];
    const subnet = new BlockList();
    subnet.addSubnet(base, Number(bits), 'ipv4');
    if (!subnet.check(gateway, 'ipv4')) fail('gateway', `${gateway} is not in vmedia.network ${network}`);
  }
}

/** What the schema cannot say alone: the keys each DHCP mode needs. */
function checkDhcp(dhcp: ConfigDocument['dhcp']): void {
  const fail = (field: string, why: string) => {
    throw new PlinthError('validation', `invalid configuration dhcp.${field}: ${why}`, { details: { field: `dhcp.${field}` } });
  };
  if (dhcp.mode === 'off') return;
  if (!dhcp.interface) fail('interface', `DHCP mode '${dhcp.mode}' needs the interface to serve on (PLINTH_DHCP_INTERFACE, --dhcp-interface)`);
  if (dhcp.mode === 'full' && dhcp.range.split(',').length < 2) fail('range', "full DHCP mode needs the addresses to hand out: first,last[,netmask] (PLINTH_DHCP_RANGE, --dhcp-range)");
  if (dhcp.mode === 'proxy' && dhcp.range.includes(':')) fail('range', 'proxy mode is IPv4 only (DHCPv6 has no proxy); give an IPv4 network or nothing');
  if (dhcp.mode !== 'full') return;
  const range = parseDhcpRange(dhcp.range);
  if (typeof range === 'string') fail('range', range);
  else if (range.family === 6) {
    // NOTE: IPv6 routers announce themselves (router advertisements); DHCPv6 has no router option.
    if (dhcp.gateway) fail('gateway', 'an IPv6 range takes no gateway: the router of the network advertises itself (dnsmasq advertises only the prefix)');
    if (dhcp.dns && !dhcp.dns.split(',').every((a) => isIPv6(a))) fail('dns', 'an IPv6 range needs IPv6 DNS servers');
  } else if (dhcp.dns && !dhcp.dns.split(',').every((a) => isIPv4(a))) fail('dns', 'an IPv4 range needs IPv4 DNS servers');
}

/** Every duration of a validated configuration in milliseconds, at its path: parsed here, once. */
function milliseconds(config: ConfigDocument): Config['ms'] {
  const ms: Json = {};
  for (const { path, schema } of leaves(ConfigSchema as unknown as Json)) {
    if (schema.pattern !== DURATION_PATTERN) continue;
    const text = path.reduce<unknown>((node, key) => (node as Json)[key], config);
    setPath(ms, path, parseDuration(text as string));
  }
  return ms as Config['ms'];
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen);
  if (!m) throw new PlinthError('validation', `listen: '${listen}' is not host:port`);
  return { host: m[1] ?? m[2] ?? '0.0.0.0', port: Number(m[3]) };
}
