import type { Db, Store } from '../store/database.js';
import { uniqueViolation } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { PlinthError } from '../core/errors.js';
import type { Actor, Machine } from './machine.js';
import type { InventoryService, MachineInput } from './service.js';
import { addMacs, findIdentityCandidates, requireMachine, updateMachineRow, type MachineChanges } from './machine-rows.js';
import { reconcileIdentity, resolveIdentity, type CandidateMachine, type Identity, type IdentityField, type Resolution } from './identity.js';

/**
 * The one path from a reported identity (a boot request, an appliance's list of systems, an
 * inspection's facts) to a machine: find the candidates (one query), resolve, lock, absorb or
 * insert. What differs between reporters is policy, passed in: whether the report may teach a
 * known machine identity, what it links, and whether an unknown machine may be enrolled.
 */

/** What a reporter may do to the machine its report resolves to. */
export interface KnownPolicy {
  /** Lock the machine's row for the rest of the transaction (the reporter writes to it). */
  lock: boolean;
  /** Why this report may not touch the machine (nothing is written), or null. */
  refuse?: (m: Machine) => string | null;
  /** Columns the report sets on the machine (enlist: its provider link and power reading). */
  set?: (m: Machine) => MachineChanges;
  /**
   * Whether the report teaches the machine identity it lacks (missing fields, new MACs).
   * Never for boot requests: anyone on the network can send one with any MAC or serial.
   */
  absorb: boolean;
}

/** How an unknown machine is enrolled: its name, its input (a provider link…), the event's reason. */
export interface NewMachine {
  name: string;
  input: MachineInput;
  reason: string;
  /** Columns set once the row exists (enlist: the power state the appliance reported). */
  set?: MachineChanges;
}

/**
 * A report that matches no machine may still be one the controller is waiting for: a machine
 * it powered on to network-boot that has no identity to match (inspection/netboot.ts).
 */
export interface NetbootCorrelation {
  /**
   * The one machine the report is taken to be (having recorded why), the machines it could
   * equally be (then none is guessed), or null.
   */
  find(trx: Db, reported: Identity): Promise<{ machineId: string } | { ambiguous: string[] } | null>;
  /** Tells a machine enrolled instead, and the candidates, that the report could have been any of them. */
  ambiguous(trx: Db, enrolled: Machine, candidates: string[]): Promise<void>;
}

export interface EnrolPolicy {
  actor: Actor;
  known: KnownPolicy;
  /** Consulted when the report matches no machine, before the enrolment gate. */
  correlation?: NetbootCorrelation;
  /** The enrolment gate: why an unknown machine is not enrolled, or null to enrol it. */
  admit?: () => string | null;
  /** Called inside the transaction, so a name can be checked against the table. */
  enrol: (trx: Db) => Promise<NewMachine>;
}

export type Enrolment =
  /** `netboot`: no identifier matched; the machine awaited this network boot (NetbootCorrelation). */
  | { outcome: 'matched'; machine: Machine; matchedBy: IdentityField | 'netboot' }
  | { outcome: 'created'; machine: Machine }
  /** `machine` is the known machine the report may not touch, or null when enrolment was refused. */
  | { outcome: 'refused'; machine: Machine | null; why: string };

/** A report resolved with its candidates, which absorbing reuses rather than query again. */
interface Resolved {
  resolution: Resolution;
  candidates: CandidateMachine[];
}

async function resolveReport(trx: Db, identity: Identity): Promise<Resolved> {
  const candidates = await findIdentityCandidates(trx, identity);
  return { resolution: resolveIdentity(identity, candidates), candidates };
}

const hasChanges = (c: MachineChanges | undefined): c is MachineChanges => c !== undefined && Object.keys(c).length > 0;

/** Bounded: each retry follows a concurrent insert of the same identity, which the next attempt finds. */
const UNIQUE_RETRIES = 3;

export class Enroller {
  constructor(private readonly d: { store: Store; clock: Clock; inventory: InventoryService }) {}

  /**
   * Finds the machine a report names and applies the reporter's policy to it, or enrols an
   * unknown machine, in one transaction. Retried when a concurrent report enrolled the same
   * machine first (a unique violation): the retry finds it.
   */
  async findOrEnrol(identity: Identity, policy: EnrolPolicy): Promise<Enrolment> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.d.store.groupTransaction((trx) => this.findOrEnrolIn(trx, identity, policy));
      } catch (e) {
        if (uniqueViolation(e) && attempt < UNIQUE_RETRIES) continue;
        throw e;
      }
    }
  }

  private async findOrEnrolIn(trx: Db, identity: Identity, policy: EnrolPolicy): Promise<Enrolment> {
    const { store, clock, inventory } = this.d;
    const { resolution, candidates } = await resolveReport(trx, identity);
    if (resolution.machineId) {
      let m = await requireMachine(trx, store.dialect, resolution.machineId, { lock: policy.known.lock });
      const why = policy.known.refuse?.(m) ?? null;
      if (why) return { outcome: 'refused', machine: m, why };
      const set = policy.known.set?.(m);
      if (hasChanges(set)) {
        await updateMachineRow(trx, m.id, set, iso(clock.now()));
        m = await requireMachine(trx, store.dialect, m.id);
      }
      if (policy.known.absorb) m = await this.absorb(trx, m, identity, candidates, policy.actor);
      return { outcome: 'matched', machine: m, matchedBy: resolution.matchedBy! };
    }
    const correlated = (await policy.correlation?.find(trx, identity)) ?? null;
    if (correlated && 'machineId' in correlated) {
      // A boot request teaches nothing here either: the machine's facts do, once they confirm it.
      return { outcome: 'matched', machine: await requireMachine(trx, store.dialect, correlated.machineId, { lock: policy.known.lock }), matchedBy: 'netboot' };
    }
    const refused = policy.admit?.() ?? null;
    if (refused) return { outcome: 'refused', machine: null, why: refused };
    const n = await policy.enrol(trx);
    // MACs another machine (with another system UUID) holds stay with it: a MAC belongs to one
    // machine, and which of the two really has the NIC now is for an operator to settle.
    const held = resolution.conflicts.filter((c) => c.field === 'mac');
    const own = held.length ? { ...identity, macs: identity.macs.filter((mac) => !held.some((c) => c.reported === mac)) } : identity;
    let m = await inventory.insert(trx, { name: n.name, identity: own, tags: {}, input: n.input, actor: policy.actor, state: 'enrolled', reason: n.reason });
    if (held.length) {
      await inventory.recordConflicts(trx, m, held, policy.actor);
      m = await requireMachine(trx, store.dialect, m.id);
    }
    if (correlated) await policy.correlation!.ambiguous(trx, m, correlated.ambiguous);
    if (!hasChanges(n.set)) return { outcome: 'created', machine: m };
    await updateMachineRow(trx, m.id, n.set, iso(clock.now()));
    return { outcome: 'created', machine: await requireMachine(trx, store.dialect, m.id) };
  }

  /**
   * What a machine's own report (its inspection facts) teaches it, inside the caller's
   * transaction. Facts that identify another known machine come from the wrong installer (a
   * run token used on the wrong machine): they are refused rather than merge two identities.
   */
  async absorbReport(trx: Db, machine: Machine, reported: Identity, actor: Actor): Promise<Machine> {
    const { resolution, candidates } = await resolveReport(trx, reported);
    if (resolution.machineId && resolution.machineId !== machine.id) {
      const owner = await requireMachine(trx, this.d.store.dialect, resolution.machineId);
      throw new PlinthError('conflict', `these facts identify machine ${owner.name} (by ${resolution.matchedBy}), not ${machine.name} whose run token was used`, {
        details: { machine: machine.name, identifies: owner.name, matchedBy: resolution.matchedBy },
      });
    }
    return this.absorb(trx, machine, reported, candidates, actor);
  }

  /**
   * Missing identity fields and new MACs, never values another machine holds; conflicts are
   * recorded. `candidates` are the machines the report's identifiers found, already queried.
   */
  private async absorb(trx: Db, m: Machine, reported: Identity, candidates: CandidateMachine[], actor: Actor): Promise<Machine> {
    const { store, clock, inventory } = this.d;
    const r = reconcileIdentity({ id: m.id, ...m.identity }, reported, candidates.filter((c) => c.id !== m.id));
    const changes: MachineChanges = {};
    if (r.updates.systemUuid) changes.system_uuid = r.updates.systemUuid;
    if (r.updates.serial) changes.serial = r.updates.serial;
    if (r.updates.manufacturer) changes.manufacturer = r.updates.manufacturer;
    if (r.updates.productName) changes.product_name = r.updates.productName;
    if (r.updates.assetTag) changes.asset_tag = r.updates.assetTag;
    if (r.newMacs.length) await addMacs(trx, m.id, r.newMacs);
    // New MACs alone update the row too: its version counts them (the lifecycle reuses a row whose version did not move).
    const changed = hasChanges(changes) || r.newMacs.length > 0;
    const now = iso(clock.now());
    if (changed) await updateMachineRow(trx, m.id, changes, now);
    // The row as just written, without reading it back: the identity it was given, its new MACs, one more version.
    const given = Object.fromEntries(Object.entries(r.updates).filter(([, v]) => v)) as Partial<Identity>;
    const updated: Machine = changed ? { ...m, identity: { ...m.identity, ...given, macs: [...m.identity.macs, ...r.newMacs] }, updatedAt: now, version: m.version + 1 } : m;
    await inventory.recordConflicts(trx, updated, r.conflicts, actor);
    return r.conflicts.length ? requireMachine(trx, store.dialect, m.id) : updated;
  }
}
