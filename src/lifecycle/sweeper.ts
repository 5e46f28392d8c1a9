import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import type { Store } from '../store/database.js';
import type { LifecycleEngine } from './engine.js';
import { TRANSITIONAL } from '../core/states.js';
import { SYSTEM_ACTOR } from '../inventory/machine.js';
import { isPlinthError } from '../core/errors.js';

export interface SweepLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * A deadline a higher module keeps (a rolling upgrade's per-machine deadline, trees/rolls.ts),
 * registered so that it is swept in every pass with the machines' own. `sweepOnce` must be
 * safe with several controllers sweeping at once (re-check under a row lock) and return how
 * many things it acted on.
 */
export interface DeadlineSweep {
  name: string;
  sweepOnce(): Promise<number>;
}

/**
 * Moves machines whose transitional state is overdue to the matching `*-failed` state with
 * `lastError.code = "timeout"` and the last stage reached. Several controllers may sweep at
 * once: the deadline is checked again on the locked row, so exactly one of them acts.
 * Machines in maintenance are left alone (no automatic action touches them).
 */
export class DeadlineSweeper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private readonly others: DeadlineSweep[] = [];

  constructor(
    private readonly deps: { store: Store; engine: LifecycleEngine; clock: Clock; log: SweepLog },
    private readonly intervalMs: number,
  ) {}

  /** Adds a sweep of a higher module's deadlines to every pass. */
  add(sweep: DeadlineSweep): void {
    this.others.push(sweep);
  }

  /** One pass; returns how many machines it moved, plus what the added sweeps acted on. */
  async sweepOnce(batch = 200): Promise<number> {
    const now = iso(this.deps.clock.now());
    const overdue = await this.deps.store.db
      .selectFrom('machines')
      .select(['id', 'name', 'state'])
      .where('state_deadline', '<', now)
      .where('state', 'in', [...TRANSITIONAL])
      .where('maintenance', '=', 0)
      .orderBy('state_deadline')
      .limit(batch)
      .execute();
    let moved = 0;
    for (const m of overdue) {
      try {
        const r = await this.deps.engine.tryAct(m.id, 'timeout', {
          actor: SYSTEM_ACTOR,
          reason: 'deadline passed',
          guard: (cur) =>
            cur.state === m.state && cur.stateDeadline !== null && cur.stateDeadline < iso(this.deps.clock.now()) && !cur.maintenance,
          error: { code: 'timeout', message: `no progress while ${m.state} before its deadline` },
        });
        if (r) {
          moved++;
          this.deps.log.warn({ machine: m.name, from: m.state, to: r.machine.state, stage: r.machine.lastError?.stage }, 'deadline passed');
        }
      } catch (e) {
        // Another controller or an agent report got there first; the next pass re-reads.
        if (!isPlinthError(e)) this.deps.log.warn({ machine: m.name, err: String(e) }, 'sweep failed for machine');
      }
    }
    for (const s of this.others) {
      try {
        moved += await s.sweepOnce();
      } catch (e) {
        // One sweep failing leaves the others to run; the next pass tries it again.
        this.deps.log.warn({ sweep: s.name, err: String(e) }, 'deadline sweep failed');
      }
    }
    return moved;
  }

  start(): void {
    if (this.timer) return;
    const tick = () => {
      this.running = this.sweepOnce().catch((e) => {
        this.deps.log.warn({ err: String(e) }, 'deadline sweep failed');
        return 0;
      });
      void this.running.finally(() => {
        this.running = null;
        if (this.timer) this.schedule(tick);
      });
    };
    this.schedule(tick);
  }

  private schedule(tick: () => void): void {
    this.timer = setTimeout(tick, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
