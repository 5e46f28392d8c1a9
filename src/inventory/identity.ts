import { normalizeMac, isUselessMac } from '../core/mac.js';

/**
 * Machine identity (DESIGN.md "Identity"): a reporting machine is matched by system UUID,
 * then serial (with manufacturer), then asset tag, then any known MAC. Placeholder values
 * that firmware vendors ship are ignored, and identities that point at different machines
 * are reported as conflicts, never merged.
 */
export interface Identity {
  systemUuid: string | null;
  serial: string | null;
  manufacturer: string | null;
  productName: string | null;
  assetTag: string | null;
  macs: string[];
}

export type ReportedIdentity = Partial<Omit<Identity, 'macs'>> & { macs?: string[] | undefined };

export { JUNK_VALUES, JUNK_UUIDS, isJunk } from '../core/junk.js';
import { JUNK_UUIDS, isJunk } from '../core/junk.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Canonical UUID (lower case, dashed), or null for junk and for anything that is not a UUID. */
export function normalizeUuid(value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  let v = value.trim().toLowerCase().replace(/^\{|\}$/g, '');
  if (/^[0-9a-f]{32}$/.test(v)) v = `${v.slice(0, 8)}-${v.slice(8, 12)}-${v.slice(12, 16)}-${v.slice(16, 20)}-${v.slice(20)}`;
  if (!UUID.test(v) || JUNK_UUIDS.includes(v)) return null;
  return v;
}

/**
 * The same UUID with its first three fields byte-swapped. SMBIOS 2.6+ (and Microsoft's GUID
 * layout) stores the time_low, time_mid and time_hi_and_version fields little-endian, RFC 4122
 * big-endian; an IPMI System GUID may be either, and ipmitool only guesses which. The same
 * 16 bytes therefore print as two strings, one per byte order.
 */
export function swapUuidByteOrder(uuid: string): string {
  const swap = (hex: string) => hex.match(/../g)!.reverse().join('');
  const [a, b, c, ...rest] = uuid.split('-');
  return [swap(a!), swap(b!), swap(c!), ...rest].join('-');
}

/** Whether two canonical UUIDs name the same system: equal in either byte order. */
export const sameUuid = (a: string | null, b: string | null): boolean => a !== null && b !== null && (a === b || a === swapUuidByteOrder(b));

const clean = (v: string | null | undefined): string | null => (isJunk(v) ? null : v!.trim());

/** Normalises what a machine, an appliance or an operator reports: junk becomes null, MACs canonical. */
export function normalizeIdentity(reported: ReportedIdentity): Identity {
  const macs = new Set<string>();
  for (const raw of reported.macs ?? []) {
    const mac = normalizeMac(raw);
    if (mac && !isUselessMac(mac)) macs.add(mac);
  }
  return {
    systemUuid: normalizeUuid(reported.systemUuid),
    serial: clean(reported.serial),
    manufacturer: clean(reported.manufacturer),
    productName: clean(reported.productName),
    assetTag: clean(reported.assetTag),
    macs: [...macs].sort(),
  };
}

export const hasAnyIdentity = (id: Identity): boolean =>
  Boolean(id.systemUuid || id.serial || id.assetTag || id.macs.length > 0);

export interface CandidateMachine {
  id: string;
  systemUuid: string | null;
  serial: string | null;
  manufacturer: string | null;
  assetTag: string | null;
  macs: string[];
}

export type IdentityField = 'systemUuid' | 'serial' | 'assetTag' | 'mac';

/**
 * A conflict: either a reported value belongs to another machine than the one chosen
 * (`other-machine`), or the chosen machine has a different value on record (`mismatch`).
 */
export interface IdentityConflict {
  field: IdentityField;
  kind: 'other-machine' | 'mismatch';
  reported: string;
  /** The other machine (other-machine) or the chosen machine (mismatch). */
  machineId: string;
  /** For mismatch: the value on record. */
  recorded?: string;
}

export interface Resolution {
  machineId: string | null;
  matchedBy: IdentityField | null;
  conflicts: IdentityConflict[];
}

/** Equal values of a field; a system UUID in either byte order (the recorded one is kept). */
const sameValue = (field: IdentityField, a: string, b: string): boolean => (field === 'systemUuid' ? sameUuid(a, b) : a === b);

const serialMatches = (id: Identity, c: CandidateMachine): boolean =>
  id.serial !== null &&
  c.serial === id.serial &&
  (id.manufacturer === null || c.manufacturer === null || c.manufacturer === id.manufacturer);

/**
 * Whether a MAC the candidate holds is evidence that the report is this machine. Not when
 * both have a system UUID and they differ: a UUID outranks a MAC, and a MAC is the one
 * identifier that moves (a NIC moved to another server, hypervisors that reuse MACs).
 */
const macIdentifies = (id: Identity, c: CandidateMachine): boolean => id.systemUuid === null || c.systemUuid === null || sameUuid(c.systemUuid, id.systemUuid);

/**
 * Chooses the machine a reported identity belongs to among the candidates the store found
 * for any of its identifiers (docs/lifecycle.md, "Identity"). A MAC held by a machine with
 * another system UUID names no machine: it is a conflict (the MAC moved), not a match. Pure:
 * the caller looks candidates up and records conflicts.
 */
export function resolveIdentity(reported: Identity, candidates: CandidateMachine[]): Resolution {
  const hits: { field: IdentityField; value: string; machineId: string }[] = [];
  const moved: IdentityConflict[] = [];
  for (const c of candidates) {
    if (sameUuid(reported.systemUuid, c.systemUuid))
      hits.push({ field: 'systemUuid', value: reported.systemUuid!, machineId: c.id });
    if (serialMatches(reported, c)) hits.push({ field: 'serial', value: reported.serial!, machineId: c.id });
    if (reported.assetTag && c.assetTag === reported.assetTag)
      hits.push({ field: 'assetTag', value: reported.assetTag, machineId: c.id });
    for (const mac of reported.macs) {
      if (!c.macs.includes(mac)) continue;
      if (macIdentifies(reported, c)) hits.push({ field: 'mac', value: mac, machineId: c.id });
      else moved.push({ field: 'mac', kind: 'other-machine', reported: mac, machineId: c.id });
    }
  }
  const order: IdentityField[] = ['systemUuid', 'serial', 'assetTag', 'mac'];
  hits.sort((a, b) => order.indexOf(a.field) - order.indexOf(b.field));
  const winner = hits[0];
  if (!winner) return { machineId: null, matchedBy: null, conflicts: moved };

  const conflicts: IdentityConflict[] = [...moved];
  for (const h of hits) {
    if (h.machineId !== winner.machineId) {
      conflicts.push({ field: h.field, kind: 'other-machine', reported: h.value, machineId: h.machineId });
    }
  }
  const chosen = candidates.find((c) => c.id === winner.machineId)!;
  const mismatch = (field: IdentityField, reportedValue: string | null, recorded: string | null) => {
    if (reportedValue && recorded && !sameValue(field, reportedValue, recorded)) {
      conflicts.push({ field, kind: 'mismatch', reported: reportedValue, recorded, machineId: chosen.id });
    }
  };
  mismatch('systemUuid', reported.systemUuid, chosen.systemUuid);
  if (reported.manufacturer === null || chosen.manufacturer === null || reported.manufacturer === chosen.manufacturer) {
    mismatch('serial', reported.serial, chosen.serial);
  }
  mismatch('assetTag', reported.assetTag, chosen.assetTag);
  return { machineId: winner.machineId, matchedBy: winner.field, conflicts };
}

export interface Reconciliation {
  /** Identity fields the machine did not have and now learns. */
  updates: Partial<Pick<Identity, 'systemUuid' | 'serial' | 'manufacturer' | 'productName' | 'assetTag'>>;
  /** MACs it reported that no machine has yet. */
  newMacs: string[];
  conflicts: IdentityConflict[];
}

/**
 * What a machine already known (`self`) learns from a new report: empty fields are filled and
 * new MACs added, unless another machine holds that value — then it is a conflict, recorded
 * and never merged. A value that differs from the one on record is a mismatch.
 */
export function reconcileIdentity(self: CandidateMachine & { productName?: string | null }, reported: Identity, others: CandidateMachine[]): Reconciliation {
  const conflicts: IdentityConflict[] = [];
  const heldElsewhere = (field: IdentityField, value: string) => {
    const other = others.find((o) =>
      o.id !== self.id &&
      (field === 'systemUuid' ? sameUuid(o.systemUuid, value) : field === 'serial' ? serialMatches(reported, o) : field === 'assetTag' ? o.assetTag === value : o.macs.includes(value)),
    );
    if (other) conflicts.push({ field, kind: 'other-machine', reported: value, machineId: other.id });
    return Boolean(other);
  };
  const updates: Reconciliation['updates'] = {};
  const learn = (field: 'systemUuid' | 'serial' | 'assetTag', value: string | null, recorded: string | null) => {
    if (!value) return;
    if (heldElsewhere(field, value)) return;
    if (recorded === null) updates[field] = value;
    else if (!sameValue(field, value, recorded)) conflicts.push({ field, kind: 'mismatch', reported: value, recorded, machineId: self.id });
  };
  learn('systemUuid', reported.systemUuid, self.systemUuid);
  learn('serial', reported.serial, self.serial);
  // The manufacturer qualifies the serial: learn it together with a serial that is (now) ours.
  const serialIsOurs = updates.serial !== undefined || (self.serial !== null && self.serial === reported.serial);
  if (reported.manufacturer && self.manufacturer === null && serialIsOurs) updates.manufacturer = reported.manufacturer;
  if (reported.productName && !self.productName) updates.productName = reported.productName;
  learn('assetTag', reported.assetTag, self.assetTag);
  const newMacs = reported.macs.filter((mac) => !self.macs.includes(mac) && !heldElsewhere('mac', mac));
  return { updates, newMacs, conflicts };
}
