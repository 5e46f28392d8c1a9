import type { Db, Store } from '../store/database.js';
import { uniqueViolation } from '../store/database.js';
import type { TreeRollMachinesTable, TreeRollsTable } from '../store/schema.js';
import type { Clock } from '../core/clock.js';
import { formatSeconds, iso } from '../core/clock.js';
import { newId } from '../core/ids.js';
import { PlinthError, notFound, validation } from '../core/errors.js';
import { appendEvent } from '../events/log.js';
import { listMachineRows, requireMachine } from '../inventory/machine-rows.js';
import type { Machine } from '../inventory/machine.js';
import type { HostVersionReport } from '../protocol/host.js';
import type { RollHook } from './host-versions.js';
import type { TreeStore } from './store.js';
import type { TransitionResult } from '../lifecycle/engine.js';

/**
 * Rolling upgrades: a group of machines of one role taken to a version N at a time, stopping
 * at the first failure (docs/trees.md#rolling-upgrades).
 *
 * The controller does not reach into hosts: a roll marks up to N machines `upgrading`, and each
 * of their hosts learns it by asking (`edeploy poll`, with its host credential) and upgrades
 * itself; its report (`edeploy upgrade` reports done or failed) moves the roll on, in the
 * report's transaction: the machine `upgraded` and the next pending one `upgrading`, or the
 * machine `failed` and the whole roll `failed`, naming the machine and its reason. Everything
 * is in the database, so a roll survives the controller's restart and any controller sharing
 * the database advances it. Events: `tree.roll-started`, `tree.roll-upgrading`,
 * `tree.roll-upgraded`, `tree.roll-failed`, `tree.roll-succeeded`, `tree.roll-stopped`.
 *
 * A machine has the roll's deadline, from being asked, to report the version; the controller's
 * deadline sweep (`expireOverdue`) fails one still upgrading after it, and the roll with it, as
 * a failed report would: a host that never polls or never reports cannot hold a roll for ever.
 */
export const ROLL_STATES = ['running', 'succeeded', 'failed', 'stopped'] as const;
export const ROLL_MACHINE_STATES = ['pending', 'upgrading', 'upgraded', 'failed'] as const;
export type RollState = (typeof ROLL_STATES)[number];
export type RollMachineState = (typeof ROLL_MACHINE_STATES)[number];

/** A roll can hold at most this many machines, and move this many at once. */
export const ROLL_MAX_MACHINES = 10_000;
/**
 * How long a machine has, from being asked, to report the roll's version: by default an hour
 * (hosts poll every five minutes, and an upgrade may rebuild an initramfs); at least a minute,
 * at most 30 days.
 */
export const ROLL_DEFAULT_DEADLINE_SECONDS = 3600;
export const ROLL_MIN_DEADLINE_SECONDS = 60;
export const ROLL_MAX_DEADLINE_SECONDS = 30 * 86_400;

export interface RollMachine {
  id: string;
  name: string;
  position: number;
  state: RollMachineState;
  /** The version the machine was at when the roll started. */
  from: string;
  /** When it was asked to upgrade (became upgrading). */
  startedAt: string | null;
  /** Upgrading past this, it fails the roll (null until asked). */
  deadlineAt: string | null;
  /** When its host first polled and was told the version (null: never, while upgrading). */
  polledAt: string | null;
  finishedAt: string | null;
  message: string | null;
}

export interface Roll {
  id: string;
  role: string;
  to: string;
  parallel: number;
  /** How long each machine has, from being asked, to report the version. */
  deadlineSeconds: number;
  state: RollState;
  createdAt: string;
  createdBy: string;
  finishedAt: string | null;
  /** The first failure, which stopped the roll. */
  failure: { machine: string; message: string } | null;
  counts: Record<RollMachineState, number>;
  machines: RollMachine[];
}

export interface RollInput {
  role: string;
  to: string;
  /** Machines by name or id, in the order they are to be upgraded… */
  machines?: string[];
  /** …or every machine with these tags (`key` or `key=value`, all must match), in name order. */
  tags?: string[];
  parallel?: number;
  /** Default ROLL_DEFAULT_DEADLINE_SECONDS. */
  deadlineSeconds?: number;
}

/** What a deadline sweep logs. */
export interface RollSweepLog {
  warn(obj: object, msg: string): void;
}

export interface RollsDeps {
  store: Store;
  clock: Clock;
  trees: Pick<TreeStore, 'get'>;
}

type Entry = Pick<TreeRollMachinesTable, 'machine_id' | 'position' | 'state'>;

export class RollService implements RollHook {
  constructor(private readonly d: RollsDeps) {}

  /**
   * Starts a roll. Every machine must be deployed from a tree of the role, have an upgrade step
   * from its version to `to` stored (or be at `to` already: it counts as upgraded), and be in
   * no other running roll; anything else is refused naming the machine, and nothing is written.
   */
  async start(input: RollInput, actor: string): Promise<Roll> {
    const { role, to } = input;
    const parallel = input.parallel ?? 1;
    if (!Number.isInteger(parallel) || parallel < 1 || parallel > ROLL_MAX_MACHINES) throw validation('parallel', `a whole number from 1 to ${ROLL_MAX_MACHINES}`);
    const deadline = input.deadlineSeconds ?? ROLL_DEFAULT_DEADLINE_SECONDS;
    if (!Number.isInteger(deadline) || deadline < ROLL_MIN_DEADLINE_SECONDS || deadline > ROLL_MAX_DEADLINE_SECONDS) {
      throw validation('deadlineSeconds', `a whole number of seconds from ${ROLL_MIN_DEADLINE_SECONDS} to ${ROLL_MAX_DEADLINE_SECONDS} (30 days)`);
    }
    if (!!input.machines === !!input.tags) throw validation('machines', 'name the machines, or give tags that select them (one of the two)');
    try {
      this.d.trees.get(role, to);
    } catch (e) {
      if (e instanceof PlinthError && e.code === 'not_found') throw validation('to', `no tree ${role}-${to} is stored`);
      throw e;
    }
    const id = newId();
    const at = iso(this.d.clock.now());
    try {
      return await this.d.store.transaction(async (trx) => {
        const machines = await this.select(trx, input);
        const rows: TreeRollMachinesTable[] = [];
        for (const [i, m] of machines.entries()) {
          const field = input.machines ? `machines[${i}]` : 'tags';
          if (m.state !== 'deployed' || m.deployment.role !== role || !m.deployment.version) {
            throw validation(field, `machine ${m.name} is ${m.state === 'deployed' ? `deployed ${m.deployment.role ? `with role ${m.deployment.role}` : 'from an image'}` : m.state}, not deployed from a tree of role ${role}`, { machine: m.name });
          }
          const from = m.deployment.version;
          if (from !== to && !this.d.trees.get(role, from).upgrades.includes(to)) {
            throw validation(field, `machine ${m.name} runs ${role} ${from}, and no upgrade step from ${from} to ${to} is stored (plinth tree upgrade-path)`, { machine: m.name });
          }
          const busy = await trx.selectFrom('tree_roll_machines').select('roll_id').where('machine_id', '=', m.id).where('active', '=', 1).executeTakeFirst();
          if (busy) throw new PlinthError('conflict', `machine ${m.name} is in roll ${busy.roll_id}, still running: stop it first`, { details: { field, machine: m.name, roll: busy.roll_id } });
          const done = from === to;
          rows.push({ roll_id: id, machine_id: m.id, position: i, state: done ? 'upgraded' : 'pending', active: 1, from_version: from, started_at: done ? at : null, finished_at: done ? at : null, message: done ? `already at ${to}` : null, deadline_at: null, polled_at: null });
        }
        await trx.insertInto('tree_rolls').values({ id, role, to_version: to, parallel, deadline_seconds: deadline, state: 'running', created_at: at, created_by: actor, finished_at: null, failed_machine_id: null, failure: null }).execute();
        for (let i = 0; i < rows.length; i += 500) await trx.insertInto('tree_roll_machines').values(rows.slice(i, i + 500)).execute();
        await appendEvent(trx, { type: 'tree.roll-started', at, actor, action: 'roll-started', reason: null, details: { roll: id, role, to, parallel, deadlineSeconds: deadline, machines: rows.length } });
        await this.advance(trx, id, at);
        return this.read(trx, id);
      });
    } catch (e) {
      if (uniqueViolation(e)) throw new PlinthError('conflict', 'a machine of this roll was taken by another roll started at the same time; start it again', { details: { field: 'machines' } });
      throw e;
    }
  }

  /** The machines a roll names (in the order given) or its tags select (in name order); never none. */
  private async select(trx: Db, input: RollInput): Promise<Machine[]> {
    let machines: Machine[];
    if (input.machines) {
      machines = [];
      for (const [i, key] of input.machines.entries()) {
        try {
          machines.push(await requireMachine(trx, this.d.store.dialect, key, { lock: true }));
        } catch (e) {
          if (e instanceof PlinthError && e.code === 'not_found') throw validation(`machines[${i}]`, `no machine '${key}'`);
          throw e;
        }
      }
      const seen = new Set<string>();
      for (const [i, m] of machines.entries()) {
        if (seen.has(m.id)) throw validation(`machines[${i}]`, `machine ${m.name} is named twice`);
        seen.add(m.id);
      }
    } else {
      const tags = input.tags!.map((t) => {
        const i = t.indexOf('=');
        return i < 0 ? { key: t } : { key: t.slice(0, i), value: t.slice(i + 1) };
      });
      const rows = await listMachineRows(trx, this.d.store.dialect, { tags }, { limit: ROLL_MAX_MACHINES + 1 });
      machines = [];
      for (const r of rows) machines.push(await requireMachine(trx, this.d.store.dialect, r.id, { lock: true }));
    }
    if (machines.length === 0) throw validation(input.machines ? 'machines' : 'tags', 'selects no machine');
    if (machines.length > ROLL_MAX_MACHINES) throw validation(input.machines ? 'machines' : 'tags', `selects more than ${ROLL_MAX_MACHINES} machines`);
    return machines;
  }

  /** Keeps `parallel` machines upgrading while some are pending; the roll succeeds when none are left. */
  private async advance(trx: Db, rollId: string, at: string): Promise<void> {
    const roll = await this.lockRoll(trx, rollId);
    if (roll.state !== 'running') return;
    const entries: Entry[] = await trx.selectFrom('tree_roll_machines').select(['machine_id', 'position', 'state']).where('roll_id', '=', rollId).orderBy('position').execute();
    let upgrading = entries.filter((e) => e.state === 'upgrading').length;
    const pending = entries.filter((e) => e.state === 'pending');
    const deadlineAt = iso(new Date(Date.parse(at) + Number(roll.deadline_seconds) * 1000));
    for (const e of pending) {
      if (upgrading >= roll.parallel) break;
      await trx.updateTable('tree_roll_machines').set({ state: 'upgrading', started_at: at, deadline_at: deadlineAt }).where('roll_id', '=', rollId).where('machine_id', '=', e.machine_id).execute();
      await appendEvent(trx, { type: 'tree.roll-upgrading', at, machineId: e.machine_id, actor: 'system:roll', action: 'roll-upgrading', reason: `roll ${rollId}: its host is to upgrade to ${roll.role} ${roll.to_version} (edeploy poll)`, details: { roll: rollId, role: roll.role, to: roll.to_version } });
      upgrading++;
    }
    if (upgrading === 0 && pending.length === 0) await this.finish(trx, roll, 'succeeded', at, null);
  }

  private async finish(trx: Db, roll: TreeRollsTable, state: Exclude<RollState, 'running'>, at: string, failure: { machineId: string; name: string; message: string } | null, actor = 'system:roll'): Promise<void> {
    await trx
      .updateTable('tree_rolls')
      .set({ state, finished_at: at, failed_machine_id: failure?.machineId ?? null, failure: failure?.message ?? null })
      .where('id', '=', roll.id)
      .execute();
    await trx.updateTable('tree_roll_machines').set({ active: 0 }).where('roll_id', '=', roll.id).execute();
    const reason = failure ? `stopped at ${failure.name}: ${failure.message}` : state === 'stopped' ? 'stopped by an operator' : `every machine at ${roll.to_version}`;
    await appendEvent(trx, { type: `tree.roll-${state}`, at, actor, action: `roll-${state}`, reason, details: { roll: roll.id, role: roll.role, to: roll.to_version, ...(failure ? { machine: failure.name } : {}) } });
  }

  /** The running roll (locked) that has yet to finish with a machine (pending or upgrading in it), or null. */
  private async unfinishedFor(trx: Db, machineId: string): Promise<TreeRollsTable | null> {
    const entry = await trx.selectFrom('tree_roll_machines').select(['roll_id', 'state']).where('machine_id', '=', machineId).where('active', '=', 1).executeTakeFirst();
    if (!entry || (entry.state !== 'upgrading' && entry.state !== 'pending')) return null;
    const roll = await this.lockRoll(trx, entry.roll_id);
    return roll.state === 'running' ? roll : null;
  }

  private async lockRoll(trx: Db, id: string): Promise<TreeRollsTable> {
    const row = await this.d.store.forUpdate(trx.selectFrom('tree_rolls').selectAll().where('id', '=', id)).executeTakeFirst();
    if (!row) throw notFound('roll', id);
    return row;
  }

  async answerPoll(db: Db, machineId: string, at: string): Promise<{ roll: string; version: string } | null> {
    const row = await db
      .selectFrom('tree_roll_machines as m')
      .innerJoin('tree_rolls as r', 'r.id', 'm.roll_id')
      .select(['r.id', 'r.to_version', 'm.polled_at'])
      .where('m.machine_id', '=', machineId)
      .where('m.active', '=', 1)
      .where('m.state', '=', 'upgrading')
      .where('r.state', '=', 'running')
      .executeTakeFirst();
    if (!row) return null;
    // The first answer only (a host polls every few minutes): what an expiry names as missing.
    if (row.polled_at === null) {
      await db.updateTable('tree_roll_machines').set({ polled_at: at }).where('roll_id', '=', row.id).where('machine_id', '=', machineId).where('state', '=', 'upgrading').where('polled_at', 'is', null).execute();
    }
    return { roll: row.id, version: row.to_version };
  }

  /**
   * A machine in a running roll reported: at the roll's version, it is upgraded and the next
   * one starts; a failed upgrade to the roll's version fails the machine and stops the roll.
   * Reports about other versions leave the roll as it is.
   */
  async onReport(trx: Db, machine: Machine, report: HostVersionReport, at: string): Promise<void> {
    const roll = await this.unfinishedFor(trx, machine.id);
    if (!roll) return;
    const set = (state: RollMachineState, message: string | null) =>
      trx.updateTable('tree_roll_machines').set({ state, finished_at: at, message }).where('roll_id', '=', roll.id).where('machine_id', '=', machine.id).execute();
    const details = { roll: roll.id, role: roll.role, to: roll.to_version };
    if (report.result !== 'failed' && report.version === roll.to_version) {
      await set('upgraded', report.rebootNeeded ? 'reboot needed' : null);
      await appendEvent(trx, { type: 'tree.roll-upgraded', at, machineId: machine.id, actor: `host:${machine.name}`, action: 'roll-upgraded', reason: `${machine.name} at ${roll.to_version}${report.rebootNeeded ? ' (reboot needed)' : ''}`, details });
      await this.advance(trx, roll.id, at);
    } else if (report.result === 'failed' && report.target === roll.to_version) {
      const message = (report.message ?? 'the upgrade failed').slice(0, 2000);
      await set('failed', message);
      await appendEvent(trx, { type: 'tree.roll-failed', at, machineId: machine.id, actor: `host:${machine.name}`, action: 'roll-failed', reason: `${machine.name}: ${message}`, details });
      await this.finish(trx, roll, 'failed', at, { machineId: machine.id, name: machine.name, message });
    }
  }

  /**
   * A machine left `deployed` (released, redeployed) while a running roll had yet to finish with
   * it: its host can no longer report, so the roll fails there, saying so. In the transition's
   * transaction (registered with the lifecycle engine).
   */
  async onTransition(trx: Db, r: TransitionResult): Promise<void> {
    if (r.from !== 'deployed' || r.machine.state === 'deployed') return;
    const roll = await this.unfinishedFor(trx, r.machine.id);
    if (!roll) return;
    const at = iso(this.d.clock.now());
    const message = `the machine left deployed (${r.transition.action}, now ${r.machine.state}) before it reached ${roll.to_version}`;
    await trx.updateTable('tree_roll_machines').set({ state: 'failed', finished_at: at, message }).where('roll_id', '=', roll.id).where('machine_id', '=', r.machine.id).execute();
    await this.finish(trx, roll, 'failed', at, { machineId: r.machine.id, name: r.machine.name, message });
  }

  /**
   * One pass of the deadline sweep (run with the controller's other deadline sweeps): every
   * machine still upgrading in a running roll after its deadline fails, and its roll with it,
   * as a failed report would (the first stops the roll; the pending stay pending). Returns how
   * many machines it failed. Each in its own transaction with the machine row locked, then the
   * roll, as a report and a transition lock them; the entry is read again under the locks, so
   * of a report and an expiry racing, or of several controllers sweeping at once, exactly one
   * acts and the others find nothing left to do. A host reporting after its expiry still has
   * its version recorded (host-versions.ts), but the roll stays failed.
   */
  async expireOverdue(log: RollSweepLog, batch = 200): Promise<number> {
    const overdue = await this.d.store.db
      .selectFrom('tree_roll_machines as m')
      .innerJoin('tree_rolls as r', 'r.id', 'm.roll_id')
      .select(['m.roll_id', 'm.machine_id'])
      .where('m.state', '=', 'upgrading')
      .where('m.deadline_at', '<', iso(this.d.clock.now()))
      .where('m.active', '=', 1)
      .where('r.state', '=', 'running')
      .orderBy('m.deadline_at')
      .limit(batch)
      .execute();
    let failed = 0;
    for (const o of overdue) {
      const expired = await this.d.store.transaction(async (trx) => {
        const machine = await requireMachine(trx, this.d.store.dialect, o.machine_id, { lock: true });
        const roll = await this.lockRoll(trx, o.roll_id);
        const entry = await trx.selectFrom('tree_roll_machines').selectAll().where('roll_id', '=', o.roll_id).where('machine_id', '=', o.machine_id).executeTakeFirst();
        const at = iso(this.d.clock.now());
        if (roll.state !== 'running' || !entry || entry.state !== 'upgrading' || Number(entry.active) !== 1 || entry.deadline_at === null || entry.deadline_at >= at) return null;
        const message = overdueMessage(roll, entry);
        await trx.updateTable('tree_roll_machines').set({ state: 'failed', finished_at: at, message }).where('roll_id', '=', roll.id).where('machine_id', '=', machine.id).execute();
        await appendEvent(trx, { type: 'tree.roll-failed', at, machineId: machine.id, actor: 'system:roll', action: 'roll-failed', reason: `${machine.name}: ${message}`, details: { roll: roll.id, role: roll.role, to: roll.to_version, deadlineSeconds: Number(roll.deadline_seconds) } });
        await this.finish(trx, roll, 'failed', at, { machineId: machine.id, name: machine.name, message });
        return { machine: machine.name, roll: roll.id, message };
      });
      if (expired) {
        failed++;
        log.warn(expired, 'tree roll: a machine passed its deadline; the roll failed');
      }
    }
    return failed;
  }

  /** Stops a running roll: no machine is asked to upgrade any more (those already upgrading finish on their own). */
  async stop(id: string, actor: string): Promise<Roll> {
    const at = iso(this.d.clock.now());
    return this.d.store.transaction(async (trx) => {
      const roll = await this.lockRoll(trx, id);
      if (roll.state !== 'running') throw new PlinthError('conflict', `roll ${id} is ${roll.state} already`, { details: { roll: id, state: roll.state } });
      await this.finish(trx, roll, 'stopped', at, null, actor);
      return this.read(trx, id);
    });
  }

  async get(id: string): Promise<Roll> {
    return this.read(this.d.store.db, id);
  }

  /** Rolls, newest first. */
  async list(limit = 100): Promise<Roll[]> {
    const rows = await this.d.store.db.selectFrom('tree_rolls').select('id').orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
    const rolls: Roll[] = [];
    for (const r of rows) rolls.push(await this.read(this.d.store.db, r.id));
    return rolls;
  }

  private async read(db: Db, id: string): Promise<Roll> {
    const roll = await db.selectFrom('tree_rolls').selectAll().where('id', '=', id).executeTakeFirst();
    if (!roll) throw notFound('roll', id);
    const entries = await db
      .selectFrom('tree_roll_machines as e')
      .innerJoin('machines as m', 'm.id', 'e.machine_id')
      .select(['e.machine_id', 'm.name', 'e.position', 'e.state', 'e.from_version', 'e.started_at', 'e.deadline_at', 'e.polled_at', 'e.finished_at', 'e.message'])
      .where('e.roll_id', '=', id)
      .orderBy('e.position')
      .execute();
    const counts = Object.fromEntries(ROLL_MACHINE_STATES.map((s) => [s, 0])) as Record<RollMachineState, number>;
    for (const e of entries) counts[e.state as RollMachineState]++;
    const failed = roll.failed_machine_id ? entries.find((e) => e.machine_id === roll.failed_machine_id) : undefined;
    return {
      id: roll.id,
      role: roll.role,
      to: roll.to_version,
      parallel: Number(roll.parallel),
      deadlineSeconds: Number(roll.deadline_seconds),
      state: roll.state as RollState,
      createdAt: roll.created_at,
      createdBy: roll.created_by,
      finishedAt: roll.finished_at,
      failure: roll.failure !== null ? { machine: failed?.name ?? roll.failed_machine_id ?? '?', message: roll.failure } : null,
      counts,
      machines: entries.map((e) => ({
        id: e.machine_id,
        name: e.name,
        position: Number(e.position),
        state: e.state as RollMachineState,
        from: e.from_version,
        startedAt: e.started_at,
        deadlineAt: e.deadline_at,
        polledAt: e.polled_at,
        finishedAt: e.finished_at,
        message: e.message,
      })),
    };
  }
}

/** Why a machine failed its roll at the deadline: whether its host ever polled and was told the version. */
function overdueMessage(roll: TreeRollsTable, entry: TreeRollMachinesTable): string {
  const within = `did not report ${roll.to_version} within ${formatSeconds(Number(roll.deadline_seconds))} of being asked`;
  return entry.polled_at === null
    ? `${within}: its host never polled (edeploy poll)`
    : `${within}: its host polled at ${entry.polled_at} and was told, but its upgrade never reported (still running, stopped before its report, or the report did not reach the controller)`;
}
