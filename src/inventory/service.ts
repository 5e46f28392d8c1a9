import type { BootMethod } from '../core/boot-method.js';
import type { Store, Db } from '../store/database.js';
import { toJson, uniqueViolation } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { PlinthError, duplicate, validation } from '../core/errors.js';
import { newId, readableName } from '../core/ids.js';
import { decodeCursor, pageOf, type Page } from '../core/pagination.js';
import { normalizeMac } from '../core/mac.js';
import type { MachinesTable } from '../store/schema.js';
import { recordEvent, recordEvents } from './events.js';
import { isTransitional } from '../core/states.js';
import { actorLabel, type Actor, type Machine } from './machine.js';
import {
  addMacs,
  deleteMachineRow,
  findIdentityCandidates,
  hydrate,
  identityColumns,
  insertMachineRow,
  insertMachineRows,
  listMachineRows, countMachineRowsByState,
  replaceMacs,
  replaceTags,
  requireMachine,
  rowToMachine,
  updateMachineRow,
  type MachineFilter,
} from './machine-rows.js';
import { normalizeIdentity, normalizeUuid, isJunk, reconcileIdentity, sameUuid, swapUuidByteOrder, type Identity, type ReportedIdentity } from './identity.js';
import { checkProviderLink } from './provider-link.js';
import { checkBootAddress, type BootNetwork } from './boot-address.js';

export interface MachineInput {
  name?: string;
  identity?: ReportedIdentity;
  tags?: Record<string, string>;
  owner?: string | null;
  maintenance?: boolean;
  maintenanceReason?: string | null;
  protected?: boolean;
  provider?: { applianceId?: string | null; ref?: string | null };
  /** null: its appliance's. */
  bootMethod?: BootMethod | null;
  /** Its fixed boot address (see boot-address.ts). */
  bootAddress?: string | null;
}

export interface MachinePatch extends Omit<MachineInput, 'tags'> {
  /** Merged into the machine's tags; a null value removes the key. */
  tags?: Record<string, string | null>;
}

/** Index names and SQLite column lists of unique constraints, mapped to the API field they protect. */
const UNIQUE_FIELDS: Record<string, string> = {
  ux_machines_name: 'name',
  'machines.name': 'name',
  ux_machines_system_uuid: 'identity.systemUuid',
  'machines.system_uuid': 'identity.systemUuid',
  ux_machines_serial: 'identity.serial',
  'index \'ux_machines_serial\'': 'identity.serial',
  ux_machines_asset_tag: 'identity.assetTag',
  'machines.asset_tag': 'identity.assetTag',
  machine_macs_pkey: 'identity.macs',
  'machine_macs.mac': 'identity.macs',
  ux_machines_boot_address: 'bootAddress',
  'machines.boot_address': 'bootAddress',
};

/**
 * Validates identity input from an operator: unlike reports from machines, a placeholder
 * or malformed value is an error to fix, not something to ignore quietly.
 */
function operatorIdentity(input: ReportedIdentity | undefined, prefix = 'identity'): Identity {
  const id = input ?? {};
  if (id.systemUuid != null && id.systemUuid !== '') {
    if (!normalizeUuid(id.systemUuid)) {
      throw validation(`${prefix}.systemUuid`, `'${id.systemUuid}' is not a usable system UUID (malformed or a placeholder value)`);
    }
  }
  for (const f of ['serial', 'assetTag'] as const) {
    const v = id[f];
    if (v != null && v !== '' && isJunk(v)) throw validation(`${prefix}.${f}`, `'${v}' is a placeholder value, not an identity`);
  }
  (id.macs ?? []).forEach((mac, i) => {
    if (!normalizeMac(mac)) throw validation(`${prefix}.macs[${i}]`, `'${mac}' is not a MAC address`);
  });
  return normalizeIdentity(id);
}

/** A generated name no other entry of the list has. */
function freshName(taken: Set<string>): string {
  for (;;) {
    const name = readableName();
    if (!taken.has(name)) {
      taken.add(name);
      return name;
    }
  }
}

/** Runs `fn` for entry `i` of a list: an error it throws names the entry (`machines[i].field`). */
async function atEntry<T>(i: number, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof PlinthError)) throw e;
    const field = typeof e.details?.['field'] === 'string' ? `machines[${i}].${e.details['field'] as string}` : `machines[${i}]`;
    throw new PlinthError(e.code, `machines[${i}].${e.message}`, { details: { ...e.details, field, index: i }, cause: e });
  }
}

/** Inventory operations outside the lifecycle: create, read, list, update, delete. */
/** Identity conflicts kept per machine (the first ones say what is wrong; more say nothing new). */
const MAX_CONFLICTS = 32;

/**
 * Work that must happen in a machine's delete transaction, before its row goes (profiles give
 * back the quota and pool entries it held). Registered by the modules above inventory, which
 * inventory may not import.
 */
export type DeleteHook = (trx: Db, machine: Machine) => Promise<void>;

export class InventoryService {
  private readonly deleteHooks: DeleteHook[] = [];

  private readonly updateListeners: ((m: Machine) => void)[] = [];

  /**
   * `bootNetwork`: the subnet boot addresses are fixed in (dhcp.mode full's, or vmedia.network),
   * or why there is none.
   */
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly opts: { bootNetwork?: BootNetwork | string | null } = {},
  ) {}

  /** Called after each committed `update` (the DHCP hosts directory follows boot addresses at once). */
  onUpdated(listener: (m: Machine) => void): void {
    this.updateListeners.push(listener);
  }

  /** Registers work to do inside every machine delete's transaction. */
  onDeleting(hook: DeleteHook): void {
    this.deleteHooks.push(hook);
  }

  async get(key: string): Promise<Machine> {
    return requireMachine(this.store.db, this.store.dialect, key);
  }

  /** A page of machines by name; facts only with `withFacts` (lists are summaries). */
  async list(filter: MachineFilter, page: { limit: number; cursor?: string; withFacts?: boolean }): Promise<Page<Machine>> {
    const after = page.cursor ? decodeCursor(page.cursor) : undefined;
    const rows = await listMachineRows(this.store.db, this.store.dialect, filter, {
      limit: page.limit + 1,
      withFacts: page.withFacts ?? false,
      ...(after !== undefined ? { after } : {}),
    });
    return pageOf(await hydrate(this.store.db, rows), page.limit, (m) => m.name);
  }

  /** How many machines the filter matches, in all and in each provision state. */
  async counts(filter: MachineFilter): Promise<{ total: number; byState: Record<string, number> }> {
    const byState = await countMachineRowsByState(this.store.db, this.store.dialect, filter);
    return { total: Object.values(byState).reduce((a, b) => a + b, 0), byState };
  }

  /** Fails with 409 naming the field when any identifier already belongs to another machine. */
  private async assertIdentityFree(db: Db, id: Identity, self: string | null): Promise<void> {
    const candidates = (await findIdentityCandidates(db, id)).filter((c) => c.id !== self);
    for (const c of candidates) {
      const owner = await requireMachine(db, this.store.dialect, c.id);
      if (sameUuid(id.systemUuid, c.systemUuid)) throw duplicate('identity.systemUuid', id.systemUuid!, owner.name);
      if (id.serial && c.serial === id.serial && (c.manufacturer ?? null) === (id.manufacturer ?? null)) {
        throw duplicate('identity.serial', id.serial, owner.name);
      }
      if (id.assetTag && c.assetTag === id.assetTag) throw duplicate('identity.assetTag', id.assetTag, owner.name);
      const mac = id.macs.find((x) => c.macs.includes(x));
      if (mac) throw duplicate('identity.macs', mac, owner.name);
    }
  }

  private mapUnique(e: unknown): never {
    const which = uniqueViolation(e);
    if (which !== null) {
      const field = UNIQUE_FIELDS[which] ?? which;
      throw new PlinthError('duplicate', `${field} is already in use by another machine`, { details: { field }, cause: e });
    }
    throw e;
  }

  async create(input: MachineInput, actor: Actor, opts: { state?: string } = {}): Promise<Machine> {
    const identity = operatorIdentity(input.identity);
    const tags = input.tags ?? {};
    const explicitName = input.name !== undefined;
    for (let attempt = 0; ; attempt++) {
      const name = input.name ?? readableName();
      try {
        const m = await this.store.groupTransaction((trx) => this.createIn(trx, { ...input, name }, actor, opts));
        if (m.bootAddress) for (const l of this.updateListeners) l(m);
        return m;
      } catch (e) {
        const takenName = e instanceof PlinthError && e.code === 'duplicate' && e.details?.['field'] === 'name';
        if (takenName && !explicitName && attempt < 5) continue;
        if (e instanceof PlinthError) throw e;
        const field = UNIQUE_FIELDS[uniqueViolation(e) ?? ''];
        // A generated name that happens to be taken: draw another one.
        if (field === 'name' && !explicitName && attempt < 5) continue;
        if (field === 'name') throw duplicate('name', name);
        this.mapUnique(e);
      }
    }
  }

  /**
   * Enrols a list of machines (an operator's rack) in one transaction: all of them or none.
   * Each goes through `createIn`, as a single enrolment does, so the checks, the row and the
   * enrol event are the same; an entry's error names it (`machines[3].identity.macs`).
   * Entries are checked for bad values first, before anything is read or written; a name
   * or identifier taken (by a machine already enrolled or an earlier entry) fails the whole
   * list with 409, as it fails a single enrolment.
   */
  async createMany(inputs: MachineInput[], actor: Actor, oneByOne = false): Promise<Machine[]> {
    for (const [i, input] of inputs.entries()) {
      await atEntry(i, async () => {
        operatorIdentity(input.identity);
        if (input.bootAddress) checkBootAddress(input.bootAddress, this.opts.bootNetwork ?? null);
      });
    }
    const names = new Set(inputs.map((m) => m.name).filter((n): n is string => n !== undefined));
    let at = 0;
    try {
      const created = await this.store.transaction(async (trx) => {
        const all = oneByOne ? null : await this.createAllAtOnce(trx, inputs, names, actor);
        if (all) return all;
        const out: Machine[] = [];
        for (at = 0; at < inputs.length; at++) {
          const input = inputs[at]!;
          out.push(await atEntry(at, () => (input.name !== undefined ? this.createIn(trx, { ...input, name: input.name }, actor) : this.createNamedIn(trx, input, names, actor))));
        }
        return out;
      });
      for (const m of created) if (m.bootAddress) for (const l of this.updateListeners) l(m);
      return created;
    } catch (e) {
      if (e instanceof PlinthError) throw e;
      // A unique index the checks did not see coming (another controller enrolled it meanwhile):
      // once more one by one, whose checks see it now and name the entry.
      if (!oneByOne && uniqueViolation(e) !== null) return this.createMany(inputs, actor, true);
      return atEntry(at, async () => this.mapUnique(e));
    }
  }

  /**
   * The whole list in one statement per table, when nothing in it can clash: no name or
   * identifier repeated within the list or already the inventory's, no boot address. The rows,
   * events and checks are a single enrolment's (`insert`'s row, `checkProviderLink`), so the
   * outcome is the one-by-one path's. Returns null when any entry needs that path, which then
   * decides it and names the entry; nothing is written before.
   */
  private async createAllAtOnce(trx: Db, inputs: MachineInput[], listNames: ReadonlySet<string>, actor: Actor): Promise<Machine[] | null> {
    if (inputs.some((i) => i.bootAddress)) return null;
    const identities = inputs.map((i) => operatorIdentity(i.identity));
    const drawn = new Set(listNames);
    const names = inputs.map((i) => i.name ?? freshName(drawn));
    const seen = new Set<string>();
    const repeated = (key: string) => seen.size === seen.add(key).size;
    for (const [i, id] of identities.entries()) {
      const keys = [`name ${names[i]}`, ...id.macs.map((m) => `mac ${m}`)];
      if (id.systemUuid) keys.push(`uuid ${[id.systemUuid, swapUuidByteOrder(id.systemUuid)].sort()[0]}`);
      if (id.serial) keys.push(`serial ${id.serial}`);
      if (id.assetTag) keys.push(`asset ${id.assetTag}`);
      if (keys.some(repeated)) return null;
    }
    if (await trx.selectFrom('machines').select('id').where('name', 'in', names).limit(1).executeTakeFirst()) return null;
    const uuids = identities.flatMap((id) => (id.systemUuid ? [id.systemUuid, swapUuidByteOrder(id.systemUuid)] : []));
    const serials = identities.flatMap((id) => (id.serial ? [id.serial] : []));
    const assetTags = identities.flatMap((id) => (id.assetTag ? [id.assetTag] : []));
    const macs = identities.flatMap((id) => id.macs);
    if (uuids.length + serials.length + assetTags.length + macs.length > 0) {
      const held = await trx
        .selectFrom('machines')
        .select('id')
        .where((eb) =>
          eb.or([
            ...(uuids.length ? [eb('system_uuid', 'in', uuids)] : []),
            ...(serials.length ? [eb('serial', 'in', serials)] : []),
            ...(assetTags.length ? [eb('asset_tag', 'in', assetTags)] : []),
            ...(macs.length ? [eb('id', 'in', eb.selectFrom('machine_macs').select('machine_id').where('mac', 'in', macs))] : []),
          ]),
        )
        .limit(1)
        .executeTakeFirst();
      if (held) return null;
    }
    for (const [i, input] of inputs.entries()) {
      if (input.provider?.applianceId) await atEntry(i, () => checkProviderLink(trx, { applianceId: input.provider!.applianceId ?? null, ref: input.provider!.ref ?? null }));
    }
    const at = iso(this.clock.now());
    const made = inputs.map((input, i) => this.newMachine({ name: names[i]!, identity: identities[i]!, tags: input.tags ?? {}, input, actor, state: 'enrolled' }, at));
    await insertMachineRows(trx, made.map((m, i) => ({ row: m.row, macs: identities[i]!.macs, tags: inputs[i]!.tags ?? {} })));
    await recordEvents(trx, made.map((m) => m.event));
    return made.map((m) => m.machine);
  }

  /** `createIn` with a generated name, drawn again when the table has it (the check reads only, so the transaction goes on). */
  private async createNamedIn(trx: Db, input: MachineInput, taken: Set<string>, actor: Actor): Promise<Machine> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.createIn(trx, { ...input, name: freshName(taken) }, actor);
      } catch (e) {
        const takenName = e instanceof PlinthError && e.code === 'duplicate' && e.details?.['field'] === 'name';
        if (!takenName || attempt >= 5) throw e;
      }
    }
  }

  /**
   * `create` inside the caller's transaction, with its name given (an import creates many
   * machines in one transaction); a name or identity in use fails it.
   */
  async createIn(trx: Db, input: MachineInput & { name: string }, actor: Actor, opts: { state?: string; reason?: string } = {}): Promise<Machine> {
    const identity = operatorIdentity(input.identity);
    await this.assertIdentityFree(trx, identity, null);
    await checkProviderLink(trx, { applianceId: input.provider?.applianceId ?? null, ref: input.provider?.ref ?? null });
    if (await trx.selectFrom('machines').select('id').where('name', '=', input.name).executeTakeFirst()) throw duplicate('name', input.name);
    if (input.bootAddress) await this.assertBootAddressFree(trx, input.bootAddress);
    return this.insert(trx, { name: input.name, identity, tags: input.tags ?? {}, input, actor, state: opts.state ?? 'enrolled', ...(opts.reason ? { reason: opts.reason } : {}) });
  }

  /** A boot address an operator gives: of the provisioning network, and no other machine's. */
  private async assertBootAddressFree(trx: Db, address: string): Promise<void> {
    checkBootAddress(address, this.opts.bootNetwork ?? null);
    const clash = await trx.selectFrom('machines').select('name').where('boot_address', '=', address).executeTakeFirst();
    if (clash) throw duplicate('bootAddress', address, clash.name);
  }

  /** Inserts a machine row and its enrolment event inside the caller's transaction. */
  async insert(
    trx: Db,
    m: { name: string; identity: Identity; tags: Record<string, string>; input: MachineInput; actor: Actor; state: string; reason?: string },
  ): Promise<Machine> {
    const made = this.newMachine(m, iso(this.clock.now()));
    await insertMachineRow(trx, made.row, m.identity.macs, m.tags);
    await recordEvent(trx, made.event);
    return made.machine;
  }

  /** A new machine's row, its enrolment event and the machine they make: what `insert` writes, written by the caller. */
  private newMachine(
    m: { name: string; identity: Identity; tags: Record<string, string>; input: MachineInput; actor: Actor; state: string; reason?: string },
    at: string,
  ) {
    const row: MachinesTable = {
      id: newId(),
      name: m.name,
      ...identityColumns(m.identity),
      facts: null,
      state: m.state,
      target_state: null,
      state_deadline: null,
      state_entered_at: at,
      last_stage: null,
      power_state: 'unknown',
      power_read_at: null,
      power_source: null,
      maintenance: m.input.maintenance ? 1 : 0,
      maintenance_reason: m.input.maintenance ? (m.input.maintenanceReason ?? null) : null,
      protected: m.input.protected ? 1 : 0,
      owner: m.input.owner ?? null,
      allocated_at: m.input.owner ? at : null,
      appliance_id: m.input.provider?.applianceId ?? null,
      provider_ref: m.input.provider?.ref ?? null,
      boot_method: m.input.bootMethod ?? null,
      last_error: null,
      identity_conflicts: null,
      current_run_id: null,
      created_at: at,
      updated_at: at,
      version: 1,
      power_expected: null,
      power_drift: 0,
      deployed_image: null,
      deployed_address: null,
      deployed_host_keys: null,
      deployed_role: null,
      deployed_version: null,
      deployed_at: null,
      boot_base_url: null,
      boot_address: m.input.bootAddress ?? null,
      profile_id: null,
      match_vars: null,
      match_spec_vars: null,
      pool_entry_id: null,
      match_error: null,
      matched_at: null,
      quota_held: 0,
    };
    const event = { machineId: row.id, at, actor: actorLabel(m.actor), action: 'enroll', fromState: null, toState: m.state, reason: m.reason ?? null, details: null };
    const machine = rowToMachine(row, m.identity.macs, Object.fromEntries(Object.entries(m.tags).sort(([a], [b]) => (a < b ? -1 : 1))));
    return { row, event, machine };
  }

  async update(key: string, patch: MachinePatch, actor: Actor): Promise<Machine> {
    try {
      const m = await this.store.transaction((trx) => this.updateIn(trx, key, patch, actor));
      for (const l of this.updateListeners) l(m);
      return m;
    } catch (e) {
      if (e instanceof PlinthError) throw e;
      this.mapUnique(e);
    }
  }

  /** `update` inside the caller's transaction; a machine left as it was returns unchanged, with no event. */
  async updateIn(trx: Db, key: string, patch: MachinePatch, actor: Actor): Promise<Machine> {
    const m = await requireMachine(trx, this.store.dialect, key, { lock: true });
    const at = iso(this.clock.now());
    const changes: Partial<MachinesTable> = {};
    const changed: string[] = [];
    const events: { action: string; reason: string | null; details: Record<string, unknown> | null }[] = [];

    if (patch.name !== undefined && patch.name !== m.name) {
      const clash = await trx.selectFrom('machines').select('id').where('name', '=', patch.name).executeTakeFirst();
      if (clash) throw duplicate('name', patch.name);
      changes.name = patch.name;
      changed.push('name');
    }
    if (patch.identity !== undefined) {
      const merged: ReportedIdentity = { ...m.identity, ...patch.identity };
      const identity = operatorIdentity(merged);
      await this.assertIdentityFree(trx, identity, m.id);
      Object.assign(changes, identityColumns(identity));
      if (patch.identity.macs !== undefined) await replaceMacs(trx, m.id, identity.macs);
      changed.push('identity');
    }
    if (patch.tags !== undefined) {
      const tags = { ...m.tags };
      for (const [k, v] of Object.entries(patch.tags)) {
        if (v === null) delete tags[k];
        else tags[k] = v;
      }
      await replaceTags(trx, m.id, tags);
      changed.push('tags');
    }
    if (patch.provider !== undefined) {
      // The link as it will be: either half may change alone, and both are checked together.
      const applianceId = patch.provider.applianceId !== undefined ? patch.provider.applianceId : m.provider.applianceId;
      const ref = patch.provider.ref !== undefined ? patch.provider.ref : m.provider.ref;
      await checkProviderLink(trx, { applianceId, ref });
      if (patch.provider.applianceId !== undefined) changes.appliance_id = patch.provider.applianceId;
      if (patch.provider.ref !== undefined) changes.provider_ref = patch.provider.ref;
      changed.push('provider');
    }
    if (patch.bootMethod !== undefined && patch.bootMethod !== m.bootMethod) {
      changes.boot_method = patch.bootMethod;
      events.push({ action: 'boot-method', reason: null, details: { bootMethod: patch.bootMethod, previous: m.bootMethod } });
    }
    if (patch.owner !== undefined && patch.owner !== m.owner) {
      changes.owner = patch.owner;
      changes.allocated_at = patch.owner === null ? null : at;
      events.push({ action: patch.owner === null ? 'deallocate' : 'allocate', reason: null, details: { owner: patch.owner, previous: m.owner } });
    }
    if (patch.maintenance !== undefined && patch.maintenance !== m.maintenance) {
      changes.maintenance = patch.maintenance ? 1 : 0;
      changes.maintenance_reason = patch.maintenance ? (patch.maintenanceReason ?? null) : null;
      events.push({ action: patch.maintenance ? 'maintenance-on' : 'maintenance-off', reason: patch.maintenanceReason ?? null, details: null });
    } else if (patch.maintenanceReason !== undefined && m.maintenance) {
      changes.maintenance_reason = patch.maintenanceReason;
      changed.push('maintenanceReason');
    } else if (patch.maintenanceReason !== undefined && patch.maintenanceReason !== null && !m.maintenance && patch.maintenance !== true) {
      throw validation('maintenanceReason', 'can only be set on a machine in maintenance (set maintenance: true)');
    }
    if (patch.bootAddress !== undefined && patch.bootAddress !== m.bootAddress) {
      if (patch.bootAddress !== null) await this.assertBootAddressFree(trx, patch.bootAddress);
      changes.boot_address = patch.bootAddress;
      changed.push('bootAddress');
    }
    if (patch.protected !== undefined && patch.protected !== m.protected) {
      changes.protected = patch.protected ? 1 : 0;
      events.push({ action: patch.protected ? 'protect' : 'unprotect', reason: null, details: null });
    }
    if (changed.length) events.unshift({ action: 'update', reason: null, details: { fields: changed } });
    if (events.length === 0) return m;

    await updateMachineRow(trx, m.id, changes, at);
    for (const e of events) {
      await recordEvent(trx, { machineId: m.id, at, actor: actorLabel(actor), action: e.action, fromState: m.state, toState: m.state, reason: e.reason, details: e.details });
    }
    return requireMachine(trx, this.store.dialect, m.id);
  }

  /** Deletes a machine with its history and runs; returns what was deleted (for the audit log). */
  async delete(key: string): Promise<Machine> {
    return this.store.transaction(async (trx) => {
      const m = await requireMachine(trx, this.store.dialect, key, { lock: true });
      if (m.protected) {
        throw new PlinthError('protected', `machine ${m.name} is protected; unprotect it before deleting`, { details: { machine: m.name } });
      }
      if (isTransitional(m.state) && !m.maintenance) {
        throw new PlinthError('invalid_transition', `cannot delete machine ${m.name} while it is ${m.state}; abort first or set maintenance`, {
          details: { machine: m.name, state: m.state },
        });
      }
      for (const hook of this.deleteHooks) await hook(trx, m);
      await deleteMachineRow(trx, m.id);
      return m;
    });
  }

  /**
   * Records identity conflicts found while resolving a report: one per (field, kind, other
   * machine) — a report that keeps sending new values for the same field adds nothing — and
   * at most MAX_CONFLICTS per machine, so reports cannot grow the row or the event log.
   */
  async recordConflicts(trx: Db, m: Machine, conflicts: Machine['identityConflicts'], actor: Actor): Promise<void> {
    const key = (c: Machine['identityConflicts'][number]) => `${c.field}\u0000${c.kind}\u0000${c.machineId ?? ''}`;
    const seen = new Set(m.identityConflicts.map(key));
    const fresh: Machine['identityConflicts'] = [];
    for (const c of conflicts) {
      if (seen.has(key(c)) || m.identityConflicts.length + fresh.length >= MAX_CONFLICTS) continue;
      seen.add(key(c));
      fresh.push(c);
    }
    if (fresh.length === 0) return;
    const at = iso(this.clock.now());
    await updateMachineRow(trx, m.id, { identity_conflicts: toJson([...m.identityConflicts, ...fresh]) }, at);
    await recordEvent(trx, { machineId: m.id, at, actor: actorLabel(actor), action: 'identity-conflict', fromState: m.state, toState: m.state, reason: null, details: { conflicts: fresh } });
  }
}
