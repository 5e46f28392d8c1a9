/**
 * Parser for the full text output of `dmidecode` (no arguments): the SMBIOS tables the
 * firmware publishes. Values are kept exactly as dmidecode prints them, placeholders
 * included ("Not Specified", "To Be Filled By O.E.M.", "Default string"): deciding which
 * values identify nothing is the controller's job (inventory/identity.ts), and an operator
 * looking at the facts should see what the machine really said.
 */

export interface DmiRecord {
  handle: number;
  type: number;
  title: string;
  /** `Key: value` lines, first occurrence wins. */
  fields: Map<string, string>;
  /** Indented lists under a key with no value on its line ("Characteristics:"). */
  lists: Map<string, string[]>;
}

export interface DmiBios {
  vendor: string | null;
  version: string | null;
  releaseDate: string | null;
}

export interface DmiSystem {
  manufacturer: string | null;
  productName: string | null;
  version: string | null;
  serial: string | null;
  uuid: string | null;
  /** null when the table predates SMBIOS 2.4 and has no SKU field at all. */
  sku: string | null;
  family: string | null;
}

export interface DmiBaseboard {
  manufacturer: string | null;
  productName: string | null;
  version: string | null;
  serial: string | null;
  assetTag: string | null;
}

export interface DmiChassis {
  manufacturer: string | null;
  type: string | null;
  version: string | null;
  serial: string | null;
  assetTag: string | null;
}

export interface DmiProcessor {
  handle: number;
  socket: string | null;
  manufacturer: string | null;
  /** The model string ("Intel(R) Xeon(R) CPU E5-2650 0 @ 2.00GHz"). */
  version: string | null;
  /** False for an empty socket: those are listed too, and must not count. */
  populated: boolean;
  coreCount: number | null;
  coreEnabled: number | null;
  threadCount: number | null;
  currentSpeedMhz: number | null;
  externalClockMhz: number | null;
}

export interface DmiMemoryArray {
  handle: number;
  /** "System Memory", "Flash Memory", "Video Memory"... */
  use: string | null;
}

export interface DmiMemoryDevice {
  handle: number;
  arrayHandle: number | null;
  /** Installed size in bytes; null for an empty slot or a size the firmware does not know. */
  sizeBytes: number | null;
  /** The Size line as printed ("16 GB", "No Module Installed"). */
  sizeText: string | null;
  locator: string | null;
  bankLocator: string | null;
  formFactor: string | null;
  type: string | null;
  typeDetail: string | null;
  speedMts: number | null;
  manufacturer: string | null;
  serial: string | null;
  partNumber: string | null;
}

export interface DmiIpmiDevice {
  interfaceType: string | null;
  specificationVersion: string | null;
  baseAddress: string | null;
}

export interface DmiInfo {
  /** "2.8", "3.2.0"... null when the header line is missing. */
  smbiosVersion: string | null;
  bios: DmiBios | null;
  system: DmiSystem | null;
  baseboard: DmiBaseboard | null;
  chassis: DmiChassis | null;
  processors: DmiProcessor[];
  memoryArrays: DmiMemoryArray[];
  memoryDevices: DmiMemoryDevice[];
  ipmi: DmiIpmiDevice | null;
}

const RECORD_HEADER = /^Handle 0x([0-9A-Fa-f]+), DMI type (\d+), \d+ bytes/;

/** Splits dmidecode output into its records. Header lines before the first record are ignored. */
export function parseDmiRecords(text: string): DmiRecord[] {
  const records: DmiRecord[] = [];
  let current: DmiRecord | null = null;
  let awaitingTitle = false;
  let lastKey: string | null = null;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/\r$/, '');
    const header = RECORD_HEADER.exec(line);
    if (header) {
      current = { handle: parseInt(header[1]!, 16), type: Number(header[2]), title: '', fields: new Map(), lists: new Map() };
      records.push(current);
      awaitingTitle = true;
      lastKey = null;
      continue;
    }
    if (current === null || line.trim() === '') continue;
    if (awaitingTitle && !line.startsWith('\t')) {
      current.title = line.trim();
      awaitingTitle = false;
      continue;
    }
    awaitingTitle = false;
    if (line.startsWith('\t\t')) {
      if (lastKey !== null) current.lists.get(lastKey)?.push(line.trim());
      continue;
    }
    if (!line.startsWith('\t')) continue;
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(1, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (!current.fields.has(key)) current.fields.set(key, value);
    lastKey = key;
    if (value === '' && !current.lists.has(key)) current.lists.set(key, []);
  }
  return records;
}

const UNIT_POWER: Record<string, number> = { bytes: 0, b: 0, kb: 1, mb: 2, gb: 3, tb: 4, pb: 5, eb: 6, zb: 7 };

/**
 * A memory size as dmidecode prints it, in bytes. SMBIOS sizes are binary multiples
 * whatever the spelling: dmidecode 3.x writes "16 GB", "1536 MB" or "512 kB" (the largest
 * unit that keeps the number whole), dmidecode 2.x always "16384 MB".
 * Returns null for "No Module Installed", "Not Installed", "Unknown", "None" and the like.
 */
export function parseDmiSize(value: string | undefined): number | null {
  if (value === undefined) return null;
  const m = /^(\d+)\s*([A-Za-z]+)$/.exec(value.trim());
  if (!m) return null;
  const power = UNIT_POWER[m[2]!.toLowerCase()];
  if (power === undefined) return null;
  return Number(m[1]) * 1024 ** power;
}

/** "1600 MT/s", "1600 MHz" -> 1600; "Unknown" -> null. */
function parseSpeed(value: string | undefined): number | null {
  if (value === undefined) return null;
  const m = /^(\d+)\s*(MT\/s|MHz)$/.exec(value.trim());
  return m ? Number(m[1]) : null;
}

function parseHandle(value: string | undefined): number | null {
  if (value === undefined) return null;
  const m = /^0x([0-9A-Fa-f]+)$/.exec(value.trim());
  return m ? parseInt(m[1]!, 16) : null;
}

function parseInteger(value: string | undefined): number | null {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : null;
}

/** The value as printed; null only when the line is absent. */
const field = (r: DmiRecord, key: string): string | null => r.fields.get(key) ?? null;

const first = (records: DmiRecord[], type: number): DmiRecord | undefined => records.find((r) => r.type === type);

export function parseDmidecode(text: string): DmiInfo {
  const records = parseDmiRecords(text);
  const version = /^SMBIOS ([\d.]+) present/m.exec(text);

  const bios = first(records, 0);
  const system = first(records, 1);
  const board = first(records, 2);
  const chassis = first(records, 3);
  const ipmi = first(records, 38);

  return {
    smbiosVersion: version ? version[1]! : null,
    bios: bios ? { vendor: field(bios, 'Vendor'), version: field(bios, 'Version'), releaseDate: field(bios, 'Release Date') } : null,
    system: system
      ? {
          manufacturer: field(system, 'Manufacturer'),
          productName: field(system, 'Product Name'),
          version: field(system, 'Version'),
          serial: field(system, 'Serial Number'),
          uuid: field(system, 'UUID'),
          sku: field(system, 'SKU Number'),
          family: field(system, 'Family'),
        }
      : null,
    baseboard: board
      ? {
          manufacturer: field(board, 'Manufacturer'),
          productName: field(board, 'Product Name'),
          version: field(board, 'Version'),
          serial: field(board, 'Serial Number'),
          assetTag: field(board, 'Asset Tag'),
        }
      : null,
    chassis: chassis
      ? {
          manufacturer: field(chassis, 'Manufacturer'),
          type: field(chassis, 'Type'),
          version: field(chassis, 'Version'),
          serial: field(chassis, 'Serial Number'),
          assetTag: field(chassis, 'Asset Tag'),
        }
      : null,
    processors: records
      .filter((r) => r.type === 4)
      .map((r) => ({
        handle: r.handle,
        socket: field(r, 'Socket Designation'),
        manufacturer: field(r, 'Manufacturer'),
        version: field(r, 'Version'),
        // NOTE: empty sockets are listed with "Status: Unpopulated" and junk in every other field.
        populated: !/^Unpopulated/i.test(field(r, 'Status') ?? ''),
        coreCount: parseInteger(r.fields.get('Core Count')),
        coreEnabled: parseInteger(r.fields.get('Core Enabled')),
        threadCount: parseInteger(r.fields.get('Thread Count')),
        currentSpeedMhz: parseSpeed(r.fields.get('Current Speed')),
        externalClockMhz: parseSpeed(r.fields.get('External Clock')),
      })),
    memoryArrays: records.filter((r) => r.type === 16).map((r) => ({ handle: r.handle, use: field(r, 'Use') })),
    memoryDevices: records
      .filter((r) => r.type === 17)
      .map((r) => ({
        handle: r.handle,
        arrayHandle: parseHandle(r.fields.get('Array Handle')),
        // NOTE: only the line keyed exactly "Size" is the module size; SMBIOS 3.2 adds
        // "Volatile Size", "Non-Volatile Size", "Cache Size" and "Logical Size" beside it.
        sizeBytes: parseDmiSize(r.fields.get('Size')),
        sizeText: field(r, 'Size'),
        locator: field(r, 'Locator'),
        bankLocator: field(r, 'Bank Locator'),
        formFactor: field(r, 'Form Factor'),
        type: field(r, 'Type'),
        typeDetail: field(r, 'Type Detail'),
        speedMts: parseSpeed(r.fields.get('Speed')),
        manufacturer: field(r, 'Manufacturer'),
        serial: field(r, 'Serial Number'),
        partNumber: field(r, 'Part Number'),
      })),
    ipmi: ipmi
      ? {
          interfaceType: field(ipmi, 'Interface Type'),
          specificationVersion: field(ipmi, 'Specification Version'),
          baseAddress: field(ipmi, 'Base Address'),
        }
      : null,
  };
}

/**
 * Installed memory: the sum of the SMBIOS memory devices that belong to system memory.
 * Null when the tables list no device of known size (many VMs and some ARM boards), so the
 * caller falls back to MemTotal, which is always smaller than what is installed (the
 * kernel's own reservations are not in it).
 */
export function installedMemoryBytes(dmi: DmiInfo): number | null {
  const systemArrays = new Set(dmi.memoryArrays.filter((a) => a.use === null || /system memory/i.test(a.use)).map((a) => a.handle));
  const knownArrays = new Set(dmi.memoryArrays.map((a) => a.handle));
  let total = 0;
  let counted = 0;
  for (const device of dmi.memoryDevices) {
    if (device.sizeBytes === null || device.sizeBytes === 0) continue;
    // NOTE: boards list flash and video memory as arrays of their own; their devices are not RAM.
    if (device.arrayHandle !== null && knownArrays.has(device.arrayHandle) && !systemArrays.has(device.arrayHandle)) continue;
    total += device.sizeBytes;
    counted++;
  }
  return counted > 0 ? total : null;
}
