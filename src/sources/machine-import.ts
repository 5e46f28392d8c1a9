import type { Db, Store } from '../store/database.js';
import { PlinthError } from '../core/errors.js';
import { readableName } from '../core/ids.js';
import type { Actor, Machine } from '../inventory/machine.js';
import type { InventoryService, MachinePatch } from '../inventory/service.js';
import { loadMachine, findIdentityCandidates } from '../inventory/machine-rows.js';
import { sameUuid, type Identity } from '../inventory/identity.js';
import { checkProviderRef } from '../inventory/provider-link.js';
import { validateAddress, type ApplianceService } from '../appliances/service.js';
import { importError, readImportDocument, type ImportBmc, type ImportEntry, type ImportFormat, type ImportProblem } from './import-document.js';

/** What an import does (or, dry, would do) to one entry's machine and appliance. */
export interface ImportItem {
  entry: string;
  /** The machine's name; null for a machine still to be created without one (named at import). */
  machine: string | null;
  action: 'create' | 'update' | 'unchanged';
  /** Fields an update changes (never their values: passwords are among them). */
  changes: string[];
  appliance: { name: string; action: 'create' | 'update' | 'unchanged'; changes: string[] } | null;
}

export interface ImportOutcome {
  format: ImportFormat;
  dryRun: boolean;
  created: number;
  updated: number;
  unchanged: number;
  items: ImportItem[];
}

/** An appliance as the plan knows it: in the database, or to be created by an earlier entry. */
interface PlannedAppliance {
  id: string | null;
  name: string;
  type: string;
  address: string;
  username: string | null;
  password: string | null;
  insecure: boolean;
}

interface Step {
  entry: ImportEntry;
  item: ImportItem;
  machine: Machine | null;
  patch: MachinePatch;
  appliance: PlannedAppliance | null;
  ref: string | null;
}

const IDENTITY_FIELDS = { systemUuid: 'uuid', serial: 'serial', assetTag: 'assetTag', manufacturer: 'manufacturer' } as const;

/**
 * `plinth machine import`: a static inventory (Plinth's YAML, TripleO's nodes.json) made
 * into machines and the appliances that control them. Each entry is matched to a machine by
 * its name or any identity and that machine updated; otherwise a machine is created. All
 * entries are checked first and written in one transaction: a document with one bad entry
 * changes nothing. Importing the same document again changes nothing (each item says
 * `unchanged`). BMC passwords are sealed like any appliance's.
 */
export class MachineImporter {
  constructor(
    private readonly d: {
      store: Store;
      inventory: InventoryService;
      appliances: ApplianceService;
    },
  ) {}

  async import(document: unknown, o: { dryRun: boolean; actor: Actor }): Promise<ImportOutcome> {
    const doc = readImportDocument(document);
    return this.importEntries(doc.format, doc.entries, o);
  }

  /** Imports entries read already (a document, NetBox's devices): planned, then written in one transaction. */
  async importEntries(format: ImportFormat, entries: ImportEntry[], o: { dryRun: boolean; actor: Actor; source?: string }): Promise<ImportOutcome> {
    const doc = { format, entries };
    const source = o.source ?? (format === 'plinth' ? 'machines document' : 'TripleO nodes');
    const run = async (db: Db) => {
      const steps = await this.plan(db, doc.entries);
      if (!o.dryRun) await this.apply(db, steps, source, o.actor);
      return steps.map((s) => s.item);
    };
    // A dry run reads only; a real one plans and writes in one transaction, so what was
    // planned is what is written.
    const items = o.dryRun ? await run(this.d.store.db) : await this.d.store.transaction(run);
    if (!o.dryRun) for (const s of items) if (s.appliance && s.appliance.action === 'update') this.d.appliances.updated(await this.d.appliances.get(s.appliance.name));
    const count = (a: ImportItem['action']) => items.filter((i) => i.action === a).length;
    return { format: doc.format, dryRun: o.dryRun, created: count('create'), updated: count('update'), unchanged: count('unchanged'), items };
  }

  private async plan(db: Db, entries: ImportEntry[]): Promise<Step[]> {
    const problems: ImportProblem[] = [];
    const planned = new Map<string, PlannedAppliance>();
    const applianceNames = new Set<string>();
    const steps: Step[] = [];
    for (const entry of entries) {
      const machine = await this.matchMachine(db, entry, problems);
      if (machine === undefined) continue;
      const applianceStep = await this.planAppliance(db, entry, machine, planned, applianceNames, problems);
      if (applianceStep === undefined) continue;
      const { appliance, applianceItem, ref } = applianceStep;
      const patch: MachinePatch = {};
      const changes: string[] = [];
      if (machine) {
        if (entry.name && entry.name !== machine.name) {
          patch.name = entry.name;
          changes.push('name');
        }
        const identity = identityChanges(machine.identity, entry.identity);
        if (identity.changed.length) {
          patch.identity = identity.patch;
          changes.push(...identity.changed);
        }
        const tags = Object.entries(entry.tags).filter(([k, v]) => machine.tags[k] !== v);
        if (tags.length) {
          patch.tags = Object.fromEntries(tags);
          changes.push(...tags.map(([k]) => `tags.${k}`));
        }
        if (appliance && (appliance.id === null || appliance.id !== machine.provider.applianceId || ref !== machine.provider.ref)) {
          changes.push('provider');
        }
      }
      steps.push({
        entry,
        machine,
        patch,
        appliance,
        ref,
        item: {
          entry: entry.path,
          machine: machine?.name ?? entry.name,
          action: machine === null ? 'create' : changes.length ? 'update' : 'unchanged',
          changes,
          appliance: applianceItem,
        },
      });
    }
    if (problems.length) throw importError(problems);
    return steps;
  }

  /** The one machine an entry names (by name or any identity), null for none, undefined when it names several. */
  private async matchMachine(db: Db, entry: ImportEntry, problems: ImportProblem[]): Promise<Machine | null | undefined> {
    const found = new Map<string, { machine: Machine; field: string; value: string }>();
    const note = (machine: Machine, field: string, value: string) => {
      if (!found.has(machine.id)) found.set(machine.id, { machine, field, value });
    };
    if (entry.name) {
      const m = await loadMachine(db, this.d.store.dialect, entry.name);
      if (m) note(m, 'name', entry.name);
    }
    const id = entry.identity;
    for (const c of await findIdentityCandidates(db, id)) {
      const m = await loadMachine(db, this.d.store.dialect, c.id);
      if (!m) continue;
      if (sameUuid(id.systemUuid, c.systemUuid)) note(m, 'uuid', id.systemUuid!);
      // A serial names a machine with the same manufacturer, or any when the entry names none.
      if (id.serial && c.serial === id.serial && (id.manufacturer === null || id.manufacturer === c.manufacturer)) note(m, 'serial', id.serial);
      if (id.assetTag && c.assetTag === id.assetTag) note(m, 'assetTag', id.assetTag);
      const mac = id.macs.find((x) => c.macs.includes(x));
      if (mac) note(m, 'macs', mac);
    }
    const all = [...found.values()];
    if (all.length > 1) {
      const [a, b] = all as [(typeof all)[0], (typeof all)[0]];
      problems.push({
        field: `${entry.path}.${b.field}`,
        message: `'${b.value}' is machine ${b.machine.name}'s, but ${a.field} '${a.value}' is machine ${a.machine.name}'s: an entry must name one machine`,
      });
      return undefined;
    }
    return all[0]?.machine ?? null;
  }

  /** The appliance an entry links its machine to, planned (found, updated or to create); undefined after a problem. */
  private async planAppliance(
    db: Db,
    entry: ImportEntry,
    machine: Machine | null,
    planned: Map<string, PlannedAppliance>,
    names: Set<string>,
    problems: ImportProblem[],
  ): Promise<{ appliance: PlannedAppliance | null; applianceItem: ImportItem['appliance']; ref: string | null } | undefined> {
    if (entry.appliance) {
      const a = await this.d.appliances.find(db, entry.appliance.name);
      if (!a) {
        problems.push({ field: `${entry.path}.appliance`, message: `no appliance is named '${entry.appliance.name}' (plinth appliance list shows them)` });
        return undefined;
      }
      if (!refFits(a, entry.appliance.ref, `${entry.path}.ref`, problems)) return undefined;
      return {
        appliance: { id: a.id, name: a.name, type: a.type, address: a.address, username: a.username, password: null, insecure: a.insecure },
        applianceItem: { name: a.name, action: 'unchanged', changes: [] },
        ref: entry.appliance.ref,
      };
    }
    const bmc = entry.bmc;
    if (!bmc) return { appliance: null, applianceItem: null, ref: null };
    try {
      validateAddress(bmc.driver, bmc.address);
    } catch (e) {
      if (!(e instanceof PlinthError)) throw e;
      problems.push({ field: `${entry.path}.bmc.address`, message: e.message.replace(/^address: /, '') });
      return undefined;
    }
    if (!refFits({ type: bmc.driver, address: bmc.address }, bmc.ref, `${entry.path}.bmc.ref`, problems)) return undefined;
    const key = `${bmc.driver}\0${bmc.address}`;
    let a = planned.get(key);
    if (!a) {
      const existing = await this.d.appliances.atAddress(db, bmc.driver, bmc.address);
      a = existing
        ? { id: existing.appliance.id, name: existing.appliance.name, type: bmc.driver, address: bmc.address, username: existing.username, password: existing.password, insecure: existing.appliance.insecure }
        : { id: null, name: await this.freeApplianceName(db, entry, machine, names), type: bmc.driver, address: bmc.address, username: bmc.username, password: bmc.password, insecure: bmc.insecure };
      planned.set(key, a);
      names.add(a.name);
      if (!existing) return { appliance: a, applianceItem: { name: a.name, action: 'create', changes: [] }, ref: bmc.ref };
    }
    const changes = credentialChanges(a, bmc);
    Object.assign(a, { username: bmc.username ?? a.username, password: bmc.password ?? a.password, insecure: bmc.insecure || a.insecure });
    return { appliance: a, applianceItem: { name: a.name, action: changes.length ? 'update' : 'unchanged', changes }, ref: bmc.ref };
  }

  /** `NAME-bmc` for a named machine, `bmc-ADDRESS` otherwise; `-2`, `-3`… when taken. */
  private async freeApplianceName(db: Db, entry: ImportEntry, machine: Machine | null, names: Set<string>): Promise<string> {
    const base = (entry.name ?? machine?.name ? `${entry.name ?? machine!.name}-bmc` : `bmc-${entry.bmc!.address.replace(/^[a-z]+:\/\//, '').replace(/[^A-Za-z0-9._-]+/g, '-')}`).slice(0, 56);
    for (let n = 1; ; n++) {
      const name = n === 1 ? base : `${base}-${n}`;
      if (!names.has(name) && !(await this.d.appliances.nameTaken(db, name))) return name;
    }
  }

  private async apply(trx: Db, steps: Step[], source: string, actor: Actor): Promise<void> {
    const taken = new Set(steps.map((s) => s.entry.name).filter((n): n is string => n !== null));
    for (const s of steps) {
      try {
        const a = s.appliance;
        if (a && a.id === null) {
          const created = await this.d.appliances.register(
            { name: a.name, type: a.type, address: a.address, username: a.username, password: a.password, insecure: a.insecure },
            trx,
          );
          a.id = created.id;
        } else if (a && s.item.appliance?.action === 'update') {
          const bmc = s.entry.bmc!;
          await this.d.appliances.updateIn(
            trx,
            a.id!,
            {
              ...(s.item.appliance.changes.includes('username') ? { username: bmc.username } : {}),
              ...(s.item.appliance.changes.includes('password') ? { password: bmc.password } : {}),
              ...(s.item.appliance.changes.includes('insecure') ? { insecure: bmc.insecure } : {}),
            },
            actor,
          );
        }
        const provider = a ? { applianceId: a.id, ref: s.ref } : undefined;
        if (s.machine === null) {
          const name = s.entry.name ?? (await this.freeMachineName(trx, taken));
          s.item.machine = name;
          const id = s.entry.identity;
          await this.d.inventory.createIn(
            trx,
            {
              name,
              identity: { systemUuid: id.systemUuid, serial: id.serial, manufacturer: id.manufacturer, assetTag: id.assetTag, macs: id.macs },
              tags: s.entry.tags,
              ...(provider ? { provider } : {}),
            },
            actor,
            { reason: `imported (${source}, ${s.entry.path})` },
          );
        } else if (s.item.action === 'update') {
          const updated = await this.d.inventory.updateIn(trx, s.machine.id, { ...s.patch, ...(s.item.changes.includes('provider') && provider ? { provider } : {}) }, actor);
          s.item.machine = updated.name;
        }
      } catch (e) {
        // A conflict only the write saw (another controller enrolled the same MAC meanwhile).
        if (e instanceof PlinthError) throw new PlinthError(e.code, `${s.entry.path}: ${e.message}`, { details: { ...e.details, entry: s.entry.path }, cause: e });
        throw e;
      }
    }
  }

  private async freeMachineName(db: Db, taken: Set<string>): Promise<string> {
    for (;;) {
      const name = readableName();
      if (!taken.has(name) && !(await loadMachine(db, this.d.store.dialect, name))) {
        taken.add(name);
        return name;
      }
    }
  }
}

/** Whether a reference stays on the appliance's endpoint; records the problem when not. */
function refFits(appliance: { type: string; address: string }, ref: string | null, field: string, problems: ImportProblem[]): boolean {
  if (ref === null) return true;
  try {
    checkProviderRef(appliance, ref);
    return true;
  } catch (e) {
    if (!(e instanceof PlinthError)) throw e;
    problems.push({ field, message: e.message.replace(/^provider\.ref: /, '') });
    return false;
  }
}

/** What an entry's identity changes on a machine: the fields it gives that differ; MACs are added, never removed. */
function identityChanges(current: Identity, wanted: Identity): { patch: NonNullable<MachinePatch['identity']>; changed: string[] } {
  const patch: NonNullable<MachinePatch['identity']> = {};
  const changed: string[] = [];
  for (const [f, label] of Object.entries(IDENTITY_FIELDS) as [keyof typeof IDENTITY_FIELDS, string][]) {
    const v = wanted[f];
    if (v === null) continue;
    if (f === 'systemUuid' ? sameUuid(v, current.systemUuid) : v === current[f]) continue;
    patch[f] = v;
    changed.push(label);
  }
  const added = wanted.macs.filter((m) => !current.macs.includes(m));
  if (added.length) {
    patch.macs = [...current.macs, ...added].sort();
    changed.push('macs');
  }
  return { patch, changed };
}

/** Credentials an entry gives that differ from the appliance's (names only). */
function credentialChanges(a: PlannedAppliance, bmc: ImportBmc): string[] {
  const changes: string[] = [];
  if (bmc.username !== null && bmc.username !== a.username) changes.push('username');
  if (bmc.password !== null && bmc.password !== a.password) changes.push('password');
  if (bmc.insecure && !a.insecure) changes.push('insecure');
  return changes;
}
