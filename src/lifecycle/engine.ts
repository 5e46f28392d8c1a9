import type { Store, Db } from '../store/database.js';
import { toJson } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import type { Page } from '../core/pagination.js';
import { PlinthError } from '../core/errors.js';
import type { Config } from '../config/schema.js';
import type { Actor, LastError, Machine } from '../inventory/machine.js';
import { actorLabel } from '../inventory/machine.js';
import { machineVersion, requireMachine, updateMachineReturning, updateMachineRow } from '../inventory/machine-rows.js';
import type { MachinesTable } from '../store/schema.js';
import { createRun, finishRun, type Run } from '../runs/runs.js';
import { historyPage, recordEvent, type MachineEvent } from '../inventory/events.js';
import { isTransitional, type State } from '../core/states.js';
import {
  allowedActions,
  findTransition,
  TARGET_STATE,
  transitionsFrom,
  type Transition,
  type TransitionParams,
} from './states.js';

export interface ActOptions {
  actor: Actor;
  reason?: string | null;
  /** Transition parameters (wipe mode) and the run's parameters (image, keys, …). */
  params?: TransitionParams & Record<string, unknown>;
  /** For fail / timeout / abort: what went wrong. */
  error?: { code: string; message: string; stage?: string };
  /** Checked on the locked row inside the transaction; when false nothing happens and `tryAct` returns null. */
  guard?: (m: Machine) => boolean;
  /** Deadline of the new state in ms from now, instead of the configured one (adaptive deadlines). */
  deadlineMs?: number;
  /** Agent reports must name the machine's current run. */
  runId?: string;
  /** The id to give the run this transition starts (when the caller prepared work for it). */
  newRunId?: string;
  /** More changes to make in the same transaction, after the transition is known to be allowed. */
  alsoInTransaction?: (trx: Db, machine: Machine, transition: Transition) => Promise<Partial<MachinesTable> | void>;
}

export interface TransitionResult {
  machine: Machine;
  from: State;
  transition: Transition;
  /** The run this transition started, if any. */
  run: Run | null;
  /** The run this transition finished, if any. */
  finishedRunId: string | null;
  actor: Actor;
}

/** A machine locked in a transaction (LifecycleEngine.withMachine): act and extend its deadline within it. */
export interface MachineTransaction {
  trx: Db;
  /** The machine as locked, before anything `fn` changes. */
  machine: Machine;
  act(action: string, opts: ActOptions): Promise<TransitionResult>;
  extendDeadline(runId: string, untilMs: number): Promise<void>;
}

export type TransitionListener = (result: TransitionResult) => void | Promise<void>;
/** Runs inside the transition's transaction: work that must commit with it or not at all (an outbox). */
export type TransactionalListener = (trx: Db, result: TransitionResult) => Promise<void>;

/** Which run status each finishing action gives the run it ends. */
const RUN_OUTCOME: Partial<Record<string, 'succeeded' | 'failed' | 'aborted'>> = {
  'inspect-done': 'succeeded',
  'deploy-done': 'succeeded',
  'wipe-done': 'succeeded',
  'exit-installer': 'succeeded',
  'exit-done': 'succeeded',
  // The console's hold did its work: it chose what to install, which the deploy run it starts does.
  'console-install': 'succeeded',
  'exit-rescue': 'succeeded',
  fail: 'failed',
  timeout: 'failed',
  abort: 'aborted',
};

/**
 * The lifecycle engine: the only code that changes a machine's provision state. Each
 * transition runs in one database transaction with the machine row locked: check flags and
 * the transition table, update the machine, start or finish its run, record the event.
 * Side effects (power, boot device) run after commit in listeners; if this process dies
 * before they finish, the deadline sweeper fails the machine cleanly.
 */
export class LifecycleEngine {
  private readonly listeners: TransitionListener[] = [];
  private readonly txListeners: TransactionalListener[] = [];
  readonly store: Store;
  private readonly clock: Clock;
  private readonly config: Pick<Config, 'ms' | 'releaseWipe'>;
  private readonly onListenerError: (e: unknown, r: TransitionResult) => void;

  constructor(opts: {
    store: Store;
    clock: Clock;
    config: Pick<Config, 'ms' | 'releaseWipe'>;
    onListenerError?: (e: unknown, r: TransitionResult) => void;
  }) {
    this.store = opts.store;
    this.clock = opts.clock;
    this.config = opts.config;
    this.onListenerError = opts.onListenerError ?? (() => undefined);
  }

  onTransition(listener: TransitionListener): void {
    this.listeners.push(listener);
  }

  onTransitionInTransaction(listener: TransactionalListener): void {
    this.txListeners.push(listener);
  }

  deadlineFor(state: string): number | null {
    if (!isTransitional(state)) return null;
    return this.config.ms.deadlines[state];
  }

  /** Performs an action or throws a PlinthError (404, 409) that says why not. */
  /** A machine's history (every transition and operator change), oldest first, page by page. */
  history(machineId: string, page: { limit: number; cursor?: string | undefined }): Promise<Page<MachineEvent>> {
    return historyPage(this.store.db, machineId, page);
  }

  async act(key: string, action: string, opts: ActOptions): Promise<TransitionResult> {
    const r = await this.tryAct(key, action, opts);
    if (!r) throw new PlinthError('conflict', `machine '${key}' changed while '${action}' was being applied; try again`);
    return r;
  }

  /** Like act, but returns null when the guard rejects the locked row. */
  async tryAct(key: string, action: string, opts: ActOptions): Promise<TransitionResult | null> {
    const result = await this.store.transaction((trx) => this.transitionIn(trx, key, action, opts));
    if (result) await this.notify(result);
    return result;
  }

  /**
   * Runs `fn` in one transaction with the machine row locked, for work that must read and
   * change a machine and its run together with a transition (an agent's report: its steps,
   * its trace, the state it moves the machine to). Transitions made through the handle
   * commit with everything else `fn` writes, or not at all; listeners run after the commit.
   */
  async withMachine<T>(key: string, fn: (h: MachineTransaction) => Promise<T>): Promise<T> {
    const done: TransitionResult[] = [];
    const value = await this.store.transaction(async (trx) => {
      const machine = await requireMachine(trx, this.store.dialect, key, { lock: true });
      // The row as this transaction last saw it: a transition reuses it while its version says
      // nothing wrote the row since (the lock keeps other transactions out; `fn` may write it).
      let latest = machine;
      return fn({
        trx,
        machine,
        act: async (action, opts) => {
          const r = await this.transitionIn(trx, machine.id, action, opts, latest);
          if (!r) throw new PlinthError('conflict', `machine '${key}' changed while '${action}' was being applied; try again`);
          latest = r.machine;
          done.push(r);
          return r;
        },
        extendDeadline: (runId, untilMs) => this.extendDeadline(machine.id, runId, untilMs, trx),
      });
    });
    for (const r of done) await this.notify(r);
    return value;
  }

  private async notify(result: TransitionResult): Promise<void> {
    for (const l of this.listeners) {
      try {
        await l(result);
      } catch (e) {
        this.onListenerError(e, result);
      }
    }
  }

  /** `known`: the machine as loaded locked earlier in this transaction, used if no write came after it. */
  private async transitionIn(trx: Db, key: string, action: string, opts: ActOptions, known?: Machine): Promise<TransitionResult | null> {
    const m = known && (await machineVersion(trx, known.id)) === known.version ? known : await requireMachine(trx, this.store.dialect, key, { lock: true });
    if (opts.guard && !opts.guard(m)) return null;
    const params: TransitionParams & Record<string, unknown> = { ...(opts.params ?? {}) };
    if (action === 'release' && params.wipe === undefined) params.wipe = this.config.releaseWipe;

    if (opts.actor.kind !== 'operator' && m.maintenance) {
      throw new PlinthError('maintenance', `machine ${m.name} is in maintenance${m.maintenanceReason ? ` (${m.maintenanceReason})` : ''}; automatic action '${action}' refused`, {
        details: { machine: m.name, action, state: m.state },
      });
    }
    if (opts.runId !== undefined && opts.runId !== m.currentRunId) {
      throw new PlinthError('conflict', `run ${opts.runId} is not the current run of machine ${m.name}`, {
        details: { machine: m.name, run: opts.runId, currentRun: m.currentRunId },
      });
    }
    const t = findTransition(m.state, action, params);
    if (!t || !t.by.includes(opts.actor.kind)) {
      const allowed = allowedActions(m.state, opts.actor.kind);
      const known = transitionsFrom(m.state, action).length > 0 && !t;
      throw new PlinthError(
        'invalid_transition',
        `cannot ${action} machine ${m.name}: it is ${m.state}${known ? ' and the parameters do not allow it' : ''}; allowed: ${allowed.join(', ') || 'none'}`,
        { details: { machine: m.name, state: m.state, action, allowed } },
      );
    }
    if (t.destructive && m.protected) {
      throw new PlinthError('protected', `machine ${m.name} is protected; '${action}' would destroy its contents (unprotect it first)`, {
        details: { machine: m.name, action, state: m.state },
      });
    }

    const now = this.clock.now();
    const at = iso(now);
    const changes: Partial<MachinesTable> = {
      state: t.to,
      target_state: isTransitional(t.to) ? TARGET_STATE[t.to] : null,
      state_entered_at: at,
      state_deadline: null,
    };
    // Releasing a machine gives it back: whoever held it (allocation) holds it no longer.
    if (action === 'release' && m.owner !== null) {
      changes.owner = null;
      changes.allocated_at = null;
    }
    const deadlineMs = opts.deadlineMs ?? this.deadlineFor(t.to);
    if (deadlineMs !== null) changes.state_deadline = iso(new Date(now.getTime() + deadlineMs));

    let finishedRunId: string | null = null;
    // A run ends when its machine leaves its states (leaving the installer for the disk is not yet the end).
    // (A transition that starts the next run ends the current one: as its action says, else aborted.)
    const outcome = isTransitional(t.to) && !t.run ? undefined : RUN_OUTCOME[action];
    if (m.currentRunId && (outcome || t.run)) {
      await finishRun(trx, m.currentRunId, outcome ?? 'aborted', at, opts.error ? { code: opts.error.code, message: opts.error.message } : null);
      finishedRunId = m.currentRunId;
      changes.current_run_id = null;
    }
    let lastError: LastError | null = m.lastError;
    if (opts.error && (action === 'fail' || action === 'timeout' || action === 'abort')) {
      lastError = { code: opts.error.code, stage: opts.error.stage ?? m.lastStage ?? m.state, message: opts.error.message, at };
      changes.last_error = toJson(lastError);
    }
    let run: Run | null = null;
    if (t.run) {
      run = await createRun(trx, {
        ...(opts.newRunId ? { id: opts.newRunId } : {}),
        machineId: m.id,
        kind: t.run,
        params,
        createdBy: actorLabel(opts.actor),
        now: at,
        reusedFrom: typeof params.reuseRun === 'string' ? params.reuseRun : null,
      });
      changes.current_run_id = run.id;
      changes.last_error = null;
      changes.last_stage = null;
    }
    const extra = opts.alsoInTransaction ? await opts.alsoInTransaction(trx, m, t) : undefined;
    const machine = await updateMachineReturning(trx, m, { ...changes, ...(extra ?? {}) }, at);
    await recordEvent(trx, {
      type: 'machine.transition',
      machineId: m.id,
      at,
      actor: actorLabel(opts.actor),
      action,
      fromState: m.state,
      toState: t.to,
      reason: opts.reason ?? null,
      details: {
        ...(run ? { run: run.id } : {}),
        ...(finishedRunId ? { finishedRun: finishedRunId } : {}),
        ...(opts.error ? { error: opts.error } : {}),
        ...(params.wipe !== undefined && (action === 'release' || action === 'wipe') ? { wipe: params.wipe } : {}),
        ...(changes.owner === null ? { owner: m.owner } : {}),
        ...(params.exitTo !== undefined ? { exitTo: params.exitTo } : {}),
      },
    });
    const result = { machine, from: m.state as State, transition: t, run, finishedRunId, actor: opts.actor };
    for (const l of this.txListeners) await l(trx, result);
    return result;
  }

  /** Moves the deadline of the machine's current state (e.g. as a deploy reports progress). */
  async extendDeadline(machineId: string, runId: string, untilMs: number, db: Db = this.store.db): Promise<void> {
    // Only while the machine still runs that run and the state has a deadline to move.
    await updateMachineRow(db, machineId, { state_deadline: iso(new Date(untilMs)) }, iso(this.clock.now()), (eb) =>
      eb.and([eb('current_run_id', '=', runId), eb('state_deadline', 'is not', null)]),
    );
  }
}
