import { sql, type Selectable } from 'kysely';
import type { Db, Store } from '../store/database.js';
import { fromJson, toJson } from '../store/database.js';
import type { ProviderJobsTable } from '../store/schema.js';
import { newId } from '../core/ids.js';
import { iso } from '../core/clock.js';
import { rearmRun } from '../runs/run-tokens.js';
import type { BootDevice, BootMode, DiscoveredSystem, PowerState, PowerTarget } from '../providers/types.js';

/**
 * Provider jobs: power and boot-device work queued in the database. The controller runs the
 * jobs of its own appliances; a remote manager claims those of its site over the API. Jobs
 * survive restarts of either side; a claim is a lease, so a job whose runner vanished is
 * handed out again (at least once — every action is idempotent); a job not done by its
 * deadline fails clearly, and the machine's operation with it.
 */
export type JobSpec =
  | {
      kind: 'boot';
      ref: string;
      device: BootDevice;
      persistent: boolean;
      mode?: BootMode;
      url?: string;
      /** With device `cd`: the ISO inserted as virtual media first ('' when the controller has no URL the BMC can fetch it from). */
      media?: string;
      then: 'reboot' | 'on' | 'none';
    }
  /** Ejects the system's virtual media (after a run booted from it). */
  | { kind: 'eject'; ref: string }
  | { kind: 'power'; ref: string; target: PowerTarget | 'reboot' }
  | { kind: 'status'; ref: string }
  | { kind: 'sync'; refs: string[] }
  | { kind: 'enumerate' };

export type JobResult =
  | {
      power?: PowerState;
      states?: Record<string, PowerState>;
      systems?: DiscoveredSystem[];
      /** A sync's failure that speaks for the appliance (refused credentials, no answer): its reads stopped there. */
      error?: { failure: string; message: string };
    }
  | Record<string, never>;

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed';

export interface ProviderJob {
  id: string;
  seq: number;
  applianceId: string;
  machineId: string | null;
  runId: string | null;
  site: string | null;
  spec: JobSpec;
  status: JobStatus;
  attempts: number;
  claimedBy: string | null;
  leaseUntil: string | null;
  deadline: string;
  result: JobResult | null;
  error: { failure: string; message: string; step?: string } | null;
  createdAt: string;
  finishedAt: string | null;
}

export const rowToJob = (r: Selectable<ProviderJobsTable>): ProviderJob => ({
  id: r.id,
  seq: Number(r.seq),
  applianceId: r.appliance_id,
  machineId: r.machine_id,
  runId: r.run_id,
  site: r.site,
  spec: fromJson(r.params, { kind: 'enumerate' }),
  status: r.status as JobStatus,
  attempts: Number(r.attempts),
  claimedBy: r.claimed_by,
  leaseUntil: r.lease_until,
  deadline: r.deadline,
  result: fromJson(r.result, null),
  error: fromJson(r.error, null),
  createdAt: r.created_at,
  finishedAt: r.finished_at,
});

/** Jobs after which the machine boots afresh (and network-boots, during a run). */
const restartsMachine = (spec: JobSpec): boolean =>
  (spec.kind === 'power' && (spec.target === 'on' || spec.target === 'reboot')) || (spec.kind === 'boot' && spec.then !== 'none');

export async function enqueueJob(
  db: Db,
  j: { applianceId: string; site: string | null; machineId?: string | null; runId?: string | null; spec: JobSpec; now: Date; deadlineMs: number },
): Promise<string> {
  if (j.machineId && restartsMachine(j.spec)) {
    // The controller itself restarts the machine: its run may be claimed again by the installer
    // that boots next (a new ticket epoch); the installer that held it is gone with the reboot.
    const m = await db.selectFrom('machines').select('current_run_id').where('id', '=', j.machineId).executeTakeFirst();
    if (m?.current_run_id) await rearmRun(db, m.current_run_id);
  }
  const id = newId();
  await db
    .insertInto('provider_jobs')
    .values({
      id,
      appliance_id: j.applianceId,
      machine_id: j.machineId ?? null,
      run_id: j.runId ?? null,
      site: j.site,
      kind: j.spec.kind,
      params: JSON.stringify(j.spec),
      status: 'queued',
      attempts: 0,
      claimed_by: null,
      lease_until: null,
      deadline: iso(new Date(j.now.getTime() + j.deadlineMs)),
      result: null,
      error: null,
      created_at: iso(j.now),
      finished_at: null,
    })
    .execute();
  return id;
}

export async function getJob(db: Db, id: string): Promise<ProviderJob | null> {
  const r = await db.selectFrom('provider_jobs').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? rowToJob(r) : null;
}

/**
 * Claims up to `limit` queued jobs of a site (null: the controller's own appliances), oldest
 * first, never more running jobs per appliance than its limit (default one: one operation at
 * a time per BMC, whichever controller or manager runs it). Claims are serialised (an
 * advisory lock on PostgreSQL, the write lock on SQLite) so the per-appliance check holds
 * across controllers.
 */
export async function claimJobs(
  store: Store,
  o: { site: string | null; claimer: string; limit: number; leaseMs: number; now: Date; perApplianceLimit?: (applianceId: string) => number },
): Promise<ProviderJob[]> {
  return store.transaction(async (trx) => {
    if (store.dialect === 'postgres') await sql`select pg_advisory_xact_lock(7708001)`.execute(trx);
    const now = iso(o.now);
    let q = trx.selectFrom('provider_jobs').selectAll().where('status', '=', 'queued').where('deadline', '>', now);
    q = o.site === null ? q.where('site', 'is', null) : q.where('site', '=', o.site);
    const queued = await q.orderBy('seq').limit(Math.max(o.limit * 4, 64)).execute();
    if (queued.length === 0) return [];
    const running = await trx
      .selectFrom('provider_jobs')
      .select(['appliance_id', (eb) => eb.fn.countAll().as('n')])
      .where('status', '=', 'running')
      .where('appliance_id', 'in', [...new Set(queued.map((r) => r.appliance_id))])
      .groupBy('appliance_id')
      .execute();
    const busy = new Map(running.map((r) => [r.appliance_id, Number(r.n)]));
    const chosen: Selectable<ProviderJobsTable>[] = [];
    for (const r of queued) {
      if (chosen.length >= o.limit) break;
      const n = busy.get(r.appliance_id) ?? 0;
      if (n >= (o.perApplianceLimit?.(r.appliance_id) ?? 1)) continue;
      busy.set(r.appliance_id, n + 1);
      chosen.push(r);
    }
    if (chosen.length === 0) return [];
    const lease = iso(new Date(o.now.getTime() + o.leaseMs));
    await trx
      .updateTable('provider_jobs')
      .set({ status: 'running', claimed_by: o.claimer, lease_until: lease, attempts: sql<number>`attempts + 1` })
      .where('id', 'in', chosen.map((r) => r.id))
      .execute();
    return chosen.map((r) => rowToJob({ ...r, status: 'running', claimed_by: o.claimer, lease_until: lease, attempts: Number(r.attempts) + 1 }));
  });
}

/**
 * Extends a running job's lease while its runner still works on it, so that a call slower
 * than the lease is not handed out again; false when the job is no longer this claimer's.
 */
export async function renewJob(db: Db, id: string, claimer: string, leaseMs: number, now: Date): Promise<boolean> {
  const r = await db
    .updateTable('provider_jobs')
    .set({ lease_until: iso(new Date(now.getTime() + leaseMs)) })
    .where('id', '=', id)
    .where('status', '=', 'running')
    .where('claimed_by', '=', claimer)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Records a job's outcome; false when the job was no longer this claimer's (lease lost, already done). */
export async function finishJob(
  db: Db,
  id: string,
  claimer: string,
  outcome: { status: 'succeeded'; result: JobResult } | { status: 'failed'; error: { failure: string; message: string; step?: string } },
  now: Date,
): Promise<boolean> {
  const r = await db
    .updateTable('provider_jobs')
    .set({
      status: outcome.status,
      result: outcome.status === 'succeeded' ? toJson(outcome.result) : null,
      error: outcome.status === 'failed' ? toJson(outcome.error) : null,
      finished_at: iso(now),
      lease_until: null,
    })
    .where('id', '=', id)
    .where('status', '=', 'running')
    .where('claimed_by', '=', claimer)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/**
 * Housekeeping: running jobs whose lease expired go back to the queue; jobs past their
 * deadline fail with a message saying who should have run them. Returns the failed jobs.
 */
export async function expireJobs(db: Db, now: Date, describeMissing: (site: string | null) => Promise<string>): Promise<ProviderJob[]> {
  const at = iso(now);
  await db
    .updateTable('provider_jobs')
    .set({ status: 'queued', claimed_by: null, lease_until: null })
    .where('status', '=', 'running')
    .where('lease_until', '<', at)
    .where('deadline', '>', at)
    .execute();
  const overdue = await db
    .selectFrom('provider_jobs')
    .selectAll()
    .where('status', 'in', ['queued', 'running'])
    .where('deadline', '<=', at)
    .execute();
  const failed: ProviderJob[] = [];
  for (const r of overdue) {
    const message = `${r.kind} job not done by its deadline: ${await describeMissing(r.site)}`;
    const u = await db
      .updateTable('provider_jobs')
      .set({ status: 'failed', error: toJson({ failure: 'timeout', message }), finished_at: at, lease_until: null })
      .where('id', '=', r.id)
      .where('status', 'in', ['queued', 'running'])
      .executeTakeFirst();
    if (Number(u.numUpdatedRows) === 1) failed.push(rowToJob({ ...r, status: 'failed', error: toJson({ failure: 'timeout', message }) }));
  }
  return failed;
}
