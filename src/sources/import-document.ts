import { PlinthError } from '../core/errors.js';
import { MACHINE_NAME_PATTERN } from '../core/ids.js';
import { normalizeMac } from '../core/mac.js';
import { PROVIDER_TYPES, type ProviderType } from '../providers/types.js';
import { IPMI_SYSTEM_REF } from '../providers/ipmi/index.js';
import { hasAnyIdentity, isJunk, normalizeIdentity, normalizeUuid, type Identity } from '../inventory/identity.js';

/**
 * Static inventory documents, read into one shape: Plinth's own YAML (`machines:`) and
 * TripleO's `nodes.json` / `instackenv.json` (`nodes:`). Everything is checked before anything
 * is written, and every problem is named by its entry and field (`machines[3].uuid`), all of
 * them at once, so a file is fixed in one go.
 */

/** The BMC (or hypervisor) that controls an imported machine. */
export interface ImportBmc {
  driver: ProviderType;
  address: string;
  username: string | null;
  password: string | null;
  /** The system behind the appliance (IPMI: `bmc`); null leaves it to the provider's default. */
  ref: string | null;
  insecure: boolean;
}

export interface ImportEntry {
  /** `machines[3]` or `nodes[3]`: how problems and plans name the entry. */
  path: string;
  name: string | null;
  identity: Identity;
  tags: Record<string, string>;
  bmc: ImportBmc | null;
  /** An appliance registered already, by name, with the machine's reference on it. */
  appliance: { name: string; ref: string | null } | null;
}

export type ImportFormat = 'plinth' | 'tripleo' | 'netbox';

export interface ImportDocument {
  format: ImportFormat;
  entries: ImportEntry[];
}

export interface ImportProblem {
  field: string;
  message: string;
}

/** At most this many entries in one document (a data-centre, not a denial of service). */
export const MAX_IMPORT_ENTRIES = 10_000;

const TAG_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;
const NAME = new RegExp(MACHINE_NAME_PATTERN);

/** The failure of a document: one line naming every problem (the first 20), all in details. */
export function importError(problems: ImportProblem[]): PlinthError {
  const shown = problems.slice(0, 20).map((p) => `${p.field}: ${p.message}`);
  const more = problems.length > shown.length ? `; and ${problems.length - shown.length} more` : '';
  return new PlinthError('validation', `${shown.join('; ')}${more}`, { details: { field: problems[0]!.field, problems } });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads field values, recording a problem (and answering undefined) for each wrong one. */
class FieldReader {
  constructor(
    readonly path: string,
    readonly raw: Record<string, unknown>,
    readonly problems: ImportProblem[],
  ) {}

  problem(field: string, message: string): undefined {
    this.problems.push({ field: `${this.path}.${field}`, message });
    return undefined;
  }

  /** A string; numbers are taken as written (YAML reads `serial: 1234` as a number). */
  string(field: string, max = 255): string | undefined {
    const v = this.raw[field];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    if (typeof v !== 'string') return this.problem(field, `must be a string, not ${Array.isArray(v) ? 'a list' : typeof v}`);
    if (v.length > max) return this.problem(field, `is longer than ${max} characters`);
    return v;
  }

  /** Fields this form does not know: a typo must not silently drop a password or a MAC. */
  unknown(known: readonly string[]): void {
    for (const k of Object.keys(this.raw)) if (!known.includes(k)) this.problem(k, `is not a field of an entry (known: ${known.join(', ')})`);
  }
}

function readIdentity(r: FieldReader, f: { uuid: string; serial: string | null; assetTag: string | null; manufacturer: string | null; macs: string[] | undefined; macsField: string }): Identity {
  const uuid = r.string(f.uuid);
  if (uuid !== undefined && !normalizeUuid(uuid)) r.problem(f.uuid, `'${uuid}' is not a usable system UUID (malformed or a placeholder value)`);
  const serial = f.serial ? r.string(f.serial) : undefined;
  if (serial !== undefined && isJunk(serial)) r.problem(f.serial!, `'${serial}' is a placeholder value, not an identity`);
  const assetTag = f.assetTag ? r.string(f.assetTag) : undefined;
  if (assetTag !== undefined && isJunk(assetTag)) r.problem(f.assetTag!, `'${assetTag}' is a placeholder value, not an identity`);
  const manufacturer = f.manufacturer ? r.string(f.manufacturer) : undefined;
  const macs: string[] = [];
  (f.macs ?? []).forEach((m, i) => {
    const mac = typeof m === 'string' ? normalizeMac(m) : null;
    if (!mac) r.problem(`${f.macsField}[${i}]`, `'${String(m)}' is not a MAC address`);
    else macs.push(mac);
  });
  return normalizeIdentity({
    ...(uuid !== undefined ? { systemUuid: uuid } : {}),
    ...(serial !== undefined ? { serial } : {}),
    ...(assetTag !== undefined ? { assetTag } : {}),
    ...(manufacturer !== undefined ? { manufacturer } : {}),
    macs,
  });
}

function readList(r: FieldReader, field: string): string[] | undefined {
  const v = r.raw[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v)) return r.problem(field, 'must be a list');
  return v as string[];
}

function readName(r: FieldReader, field = 'name'): string | null {
  const name = r.string(field, 63);
  if (name === undefined) return null;
  if (!NAME.test(name)) {
    r.problem(field, `'${name}' is not a hostname label (a-z, 0-9 and hyphens)`);
    return null;
  }
  return name;
}

function addressFor(r: FieldReader, driver: ProviderType, field: string, address: string, port: string | undefined): string {
  if (driver === 'redfish' && !/^https?:\/\//.test(address)) return `https://${address}${port ? `:${port}` : ''}`;
  if (driver === 'ipmi' && port !== undefined) {
    if (!/^\d{1,5}$/.test(port)) r.problem(field, `'${port}' is not a port`);
    return `${address}:${port}`;
  }
  return address;
}

const PLINTH_FIELDS = ['name', 'serial', 'uuid', 'assetTag', 'manufacturer', 'macs', 'tags', 'bmc', 'appliance', 'ref'] as const;
const BMC_FIELDS = ['driver', 'address', 'username', 'password', 'ref', 'insecure'] as const;

function readPlinthEntry(raw: unknown, path: string, problems: ImportProblem[]): ImportEntry | null {
  if (!isObject(raw)) {
    problems.push({ field: path, message: 'must be a mapping of fields' });
    return null;
  }
  const r = new FieldReader(path, raw, problems);
  r.unknown(PLINTH_FIELDS);
  const name = readName(r);
  const macs = readList(r, 'macs');
  const identity = readIdentity(r, { uuid: 'uuid', serial: 'serial', assetTag: 'assetTag', manufacturer: 'manufacturer', macs, macsField: 'macs' });
  const tags: Record<string, string> = {};
  const rawTags = raw['tags'];
  if (rawTags !== undefined && rawTags !== null) {
    if (!isObject(rawTags)) r.problem('tags', 'must be a map of key: value');
    else {
      for (const [k, v] of Object.entries(rawTags)) {
        if (!TAG_KEY.test(k) || k.length > 63) r.problem(`tags.${k}`, 'is not a tag key (letters, digits, . _ / -; at most 63)');
        else if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') r.problem(`tags.${k}`, 'must be a string');
        else if (String(v).length > 255) r.problem(`tags.${k}`, 'is longer than 255 characters');
        else tags[k] = String(v);
      }
    }
  }
  let bmc: ImportBmc | null = null;
  let appliance: ImportEntry['appliance'] = null;
  const rawBmc = raw['bmc'];
  const rawAppliance = raw['appliance'];
  if (rawBmc !== undefined && rawAppliance !== undefined) r.problem('appliance', 'give bmc (a BMC to register) or appliance (one registered already), not both');
  if (rawBmc !== undefined && rawBmc !== null) {
    if (!isObject(rawBmc)) r.problem('bmc', 'must be a mapping with driver, address, username, password');
    else {
      const b = new FieldReader(`${path}.bmc`, rawBmc, problems);
      b.unknown(BMC_FIELDS);
      const driver = b.string('driver');
      const address = b.string('address', 2048);
      if (driver === undefined) b.problem('driver', `is required (one of ${PROVIDER_TYPES.join(', ')})`);
      else if (!(PROVIDER_TYPES as readonly string[]).includes(driver)) b.problem('driver', `'${driver}' is not one of ${PROVIDER_TYPES.join(', ')}`);
      if (address === undefined) b.problem('address', 'is required');
      const insecure = rawBmc['insecure'];
      if (insecure !== undefined && typeof insecure !== 'boolean') b.problem('insecure', 'must be true or false');
      if (driver !== undefined && address !== undefined && (PROVIDER_TYPES as readonly string[]).includes(driver)) {
        const d = driver as ProviderType;
        bmc = {
          driver: d,
          address,
          username: b.string('username') ?? null,
          password: b.string('password', 1024) ?? null,
          ref: b.string('ref', 1024) ?? (d === 'ipmi' ? IPMI_SYSTEM_REF : null),
          insecure: insecure === true,
        };
      }
    }
  }
  if (rawAppliance !== undefined && rawAppliance !== null) {
    const applianceName = r.string('appliance', 63);
    if (applianceName !== undefined) appliance = { name: applianceName, ref: r.string('ref', 1024) ?? null };
  } else if (raw['ref'] !== undefined && rawBmc === undefined) r.problem('ref', 'names a system on an appliance: give appliance too (or bmc.ref)');
  if (!name && !hasAnyIdentity(identity)) r.problem('name', 'an entry needs a name or an identity (serial, uuid, assetTag or macs)');
  return { path, name, identity, tags, bmc, appliance };
}

/** TripleO's driver names (old `pxe_*` ones included) mapped to the provider that speaks the protocol. */
const TRIPLEO_DRIVERS: Record<string, ProviderType> = {
  ipmi: 'ipmi',
  pxe_ipmitool: 'ipmi',
  ipmitool: 'ipmi',
  redfish: 'redfish',
  idrac: 'redfish',
  'idrac-redfish': 'redfish',
};

/** Ironic's node properties, kept as tags under Ironic's names so they read the same. */
const TRIPLEO_PROPERTIES: Record<string, string> = { cpu: 'cpus', memory: 'memory_mb', disk: 'local_gb', arch: 'cpu_arch' };

const TRIPLEO_FIELDS = [
  'name', 'uuid', 'pm_type', 'pm_addr', 'pm_user', 'pm_password', 'pm_port', 'pm_system_id', 'redfish_verify_ca',
  'mac', 'ports', 'cpu', 'memory', 'disk', 'arch', 'capabilities', 'root_device', 'kernel_id', 'ramdisk_id', 'platform', 'resource_class',
] as const;

function readTripleoEntry(raw: unknown, path: string, problems: ImportProblem[]): ImportEntry | null {
  if (!isObject(raw)) {
    problems.push({ field: path, message: 'must be an object' });
    return null;
  }
  const r = new FieldReader(path, raw, problems);
  r.unknown(TRIPLEO_FIELDS);
  const name = readName(r);
  let macs = readList(r, 'mac');
  let macsField = 'mac';
  if (macs === undefined && Array.isArray(raw['ports'])) {
    // The newer form: `ports: [{address: MAC}]`.
    macs = (raw['ports'] as unknown[]).map((p) => (isObject(p) ? p['address'] : p)) as string[];
    macsField = 'ports';
  }
  const identity = readIdentity(r, { uuid: 'uuid', serial: null, assetTag: null, manufacturer: null, macs, macsField });
  const tags: Record<string, string> = {};
  for (const [field, tag] of Object.entries(TRIPLEO_PROPERTIES)) {
    const v = r.string(field, 255);
    if (v !== undefined) tags[tag] = v;
  }
  const caps = r.string('capabilities', 2048);
  for (const pair of caps ? caps.split(',') : []) {
    const i = pair.indexOf(':');
    const key = `capabilities.${(i < 0 ? pair : pair.slice(0, i)).trim()}`;
    if (!TAG_KEY.test(key) || key.length > 63) r.problem('capabilities', `'${pair}' is not key:value`);
    else tags[key] = i < 0 ? '' : pair.slice(i + 1).trim();
  }
  let bmc: ImportBmc | null = null;
  const pmType = r.string('pm_type');
  const pmAddr = r.string('pm_addr', 2048);
  if (pmType !== undefined || pmAddr !== undefined) {
    const driver = pmType === undefined ? undefined : TRIPLEO_DRIVERS[pmType];
    if (pmType === undefined) r.problem('pm_type', 'is required with pm_addr');
    else if (!driver) r.problem('pm_type', `'${pmType}' is not supported (${Object.keys(TRIPLEO_DRIVERS).join(', ')})`);
    if (pmAddr === undefined) r.problem('pm_addr', 'is required with pm_type');
    if (driver && pmAddr !== undefined) {
      bmc = {
        driver,
        address: addressFor(r, driver, 'pm_port', pmAddr, r.string('pm_port')),
        username: r.string('pm_user') ?? null,
        password: r.string('pm_password', 1024) ?? null,
        ref: r.string('pm_system_id', 1024) ?? (driver === 'ipmi' ? IPMI_SYSTEM_REF : null),
        insecure: raw['redfish_verify_ca'] === false,
      };
    }
  }
  if (!name && !hasAnyIdentity(identity)) r.problem('mac', 'a node needs a name, a uuid or a MAC address');
  return { path, name, identity, tags, bmc, appliance: null };
}

/**
 * Reads a parsed document: `{machines: [...]}` (Plinth) or `{nodes: [...]}` (TripleO). Throws
 * one validation error listing every problem; a document with none gives every entry checked.
 */
export function readImportDocument(doc: unknown): ImportDocument {
  if (!isObject(doc)) throw importError([{ field: 'document', message: 'must be a mapping with machines: (Plinth) or nodes: (TripleO nodes.json / instackenv.json)' }]);
  const format: ImportFormat | null = 'machines' in doc ? 'plinth' : 'nodes' in doc ? 'tripleo' : null;
  if (format === null) throw importError([{ field: 'document', message: 'has neither machines: (Plinth) nor nodes: (TripleO nodes.json / instackenv.json)' }]);
  const key = format === 'plinth' ? 'machines' : 'nodes';
  const list = doc[key];
  if (!Array.isArray(list)) throw importError([{ field: key, message: 'must be a list' }]);
  if (list.length > MAX_IMPORT_ENTRIES) throw importError([{ field: key, message: `has ${list.length} entries; at most ${MAX_IMPORT_ENTRIES} per import` }]);
  const problems: ImportProblem[] = [];
  const entries: ImportEntry[] = [];
  list.forEach((raw, i) => {
    const e = format === 'plinth' ? readPlinthEntry(raw, `${key}[${i}]`, problems) : readTripleoEntry(raw, `${key}[${i}]`, problems);
    if (e) entries.push(e);
  });
  problems.push(...sameValueTwice(entries));
  if (problems.length) throw importError(problems);
  return { format, entries };
}

/** Two entries of one document naming the same machine name or identity value. */
export function sameValueTwice(entries: ImportEntry[]): ImportProblem[] {
  const seen = new Map<string, string>();
  const problems: ImportProblem[] = [];
  const claim = (key: string, field: string, e: ImportEntry, value: string) => {
    const first = seen.get(key);
    if (first !== undefined) problems.push({ field: `${e.path}.${field}`, message: `'${value}' is also ${first}'s` });
    else seen.set(key, e.path);
  };
  for (const e of entries) {
    if (e.name) claim(`name\0${e.name}`, 'name', e, e.name);
    if (e.identity.systemUuid) claim(`uuid\0${e.identity.systemUuid}`, 'uuid', e, e.identity.systemUuid);
    if (e.identity.serial) claim(`serial\0${e.identity.manufacturer ?? ''}\0${e.identity.serial}`, 'serial', e, e.identity.serial);
    if (e.identity.assetTag) claim(`asset\0${e.identity.assetTag}`, 'assetTag', e, e.identity.assetTag);
    for (const mac of e.identity.macs) claim(`mac\0${mac}`, 'macs', e, mac);
  }
  return problems;
}
