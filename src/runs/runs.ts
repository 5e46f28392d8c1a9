import { appendEvent, appendEvents } from '../events/log.js';
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../store/database.js';
import { fromJson, toJson } from '../store/database.js';
import type { RunsTable } from '../store/schema.js';
import type { RunKind } from '../core/states.js';
import { plannedSteps } from '../protocol/runs.js';
import { newId } from '../core/ids.js';
import { PlinthError } from '../core/errors.js';

/**
 * A run is one inspect, deploy or wipe of one machine: its steps, timestamps, log lines,
 * rendered artifacts and result. Runs are created by the lifecycle engine in the same
 * transaction as the transition that starts the work.
 */
export type RunStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'aborted';
export type StepStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped';

export interface RunStep {
  name: string;
  status: StepStatus;
  startedAt: string | null;
  finishedAt: string | null;
  message: string | null;
}

export interface Run {
  id: string;
  machineId: string;
  kind: RunKind;
  status: RunStatus;
  steps: RunStep[];
  params: Record<string, unknown>;
  error: { code: string; message: string } | null;
  reusedFrom: string | null;
  createdBy: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface RunArtifact {
  name: string;
  contentType: string;
  sha256: string;
  size: number;
  createdAt: string;
}

export interface RunLogLine {
  id: number;
  at: string;
  stream: string;
  line: string;
}

export const ACTIVE_RUN: RunStatus[] = ['pending', 'running'];

function rowToRun(r: RunsTable): Run {
  return {
    id: r.id,
    machineId: r.machine_id,
    kind: r.kind as RunKind,
    status: r.status as RunStatus,
    steps: fromJson(r.steps, []),
    params: fromJson(r.params, {}),
    error: fromJson(r.error, null),
    reusedFrom: r.reused_from,
    createdBy: r.created_by,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

export async function createRun(
  db: Db,
  input: { id?: string; machineId: string; kind: RunKind; params: Record<string, unknown>; createdBy: string; now: string; reusedFrom?: string | null },
): Promise<Run> {
  const row: RunsTable = {
    id: input.id ?? newId(),
    machine_id: input.machineId,
    kind: input.kind,
    status: 'pending',
    steps: JSON.stringify(
      plannedSteps(input.kind, input.params).map((name) => ({ name, status: 'pending', startedAt: null, finishedAt: null, message: null })),
    ),
    params: JSON.stringify(input.params),
    error: null,
    token_hash: null,
    reused_from: input.reusedFrom ?? null,
    created_by: input.createdBy,
    created_at: input.now,
    started_at: null,
    finished_at: null,
    callback_hash: null,
    token_epoch: 0,
    log_bytes: 0,
    callback_sealed: null,
  };
  await db.insertInto('runs').values(row).execute();
  return rowToRun(row);
}

export async function finishRun(
  db: Db,
  runId: string,
  status: Exclude<RunStatus, 'pending' | 'running'>,
  now: string,
  error: { code: string; message: string } | null = null,
): Promise<void> {
  const res = await db
    .updateTable('runs')
    .set({ status, finished_at: now, error: toJson(error), token_hash: null })
    .where('id', '=', runId)
    .where('status', 'in', ACTIVE_RUN)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) return;
  const run = await db.selectFrom('runs').select(['machine_id', 'kind']).where('id', '=', runId).executeTakeFirstOrThrow();
  await appendEvent(db, {
    type: `run.${status}`,
    machineId: run.machine_id,
    at: now,
    actor: 'system',
    action: status,
    reason: error?.message ?? null,
    details: { run: runId, kind: run.kind, ...(error ? { error: error.code } : {}) },
  });
}

/** Replaces a run's parameters (what its machine reported while the run holds it, e.g. an SSH endpoint). */
export async function setRunParams(db: Db, runId: string, params: Record<string, unknown>): Promise<void> {
  await db.updateTable('runs').set({ params: JSON.stringify(params) }).where('id', '=', runId).execute();
}

export async function getRun(db: Db, id: string): Promise<Run> {
  const row = await db.selectFrom('runs').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new PlinthError('not_found', `run '${id}' not found`, { details: { run: id } });
  return rowToRun(row);
}

/** Runs of a machine, newest first; `before` is the (createdAt, id) of the last run of the previous page. */
export async function listRuns(db: Db, machineId: string, page: { limit: number; before?: { createdAt: string; id: string } }): Promise<Run[]> {
  let q = db.selectFrom('runs').selectAll().where('machine_id', '=', machineId);
  const before = page.before;
  if (before !== undefined) {
    q = q.where((eb) =>
      eb.or([eb('created_at', '<', before.createdAt), eb.and([eb('created_at', '=', before.createdAt), eb('id', '<', before.id)])]),
    );
  }
  const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(page.limit).execute();
  return rows.map(rowToRun);
}

/** Marks a step running/succeeded/failed; the run becomes `running` with its first step. */
export function updateStep(db: Db, runId: string, stepName: string, status: StepStatus, now: string, message: string | null = null): Promise<Run> {
  return updateSteps(db, runId, [stepName], status, now, message);
}

/**
 * Marks several steps alike, in order, with one read and one write of the run (an agent's
 * hello marks three: each its own read and write was a sixth of the hello's statements).
 */
export async function updateSteps(db: Db, runId: string, stepNames: readonly string[], status: StepStatus, now: string, message: string | null = null, known?: Run): Promise<Run> {
  // `known`: the run as read earlier in this transaction (the machine's row lock keeps its run's writers out).
  const run = known && known.id === runId ? { ...known, steps: known.steps.map((s) => ({ ...s })) } : await getRun(db, runId);
  const changed: string[] = [];
  for (const stepName of stepNames) {
    let step = run.steps.find((s) => s.name === stepName);
    if (!step) {
      step = { name: stepName, status: 'pending', startedAt: null, finishedAt: null, message: null };
      run.steps.push(step);
    }
    if (step.status !== status) changed.push(stepName);
    if (status === 'running' && !step.startedAt) step.startedAt = now;
    if (status === 'succeeded' || status === 'failed' || status === 'skipped') {
      step.startedAt ??= now;
      step.finishedAt = now;
    }
    step.status = status;
    if (message !== null) step.message = message;
  }
  const startedAt = run.startedAt ?? now;
  await db
    .updateTable('runs')
    .set({
      steps: JSON.stringify(run.steps),
      started_at: startedAt,
      status: run.status === 'pending' ? 'running' : run.status,
    })
    .where('id', '=', runId)
    .execute();
  // The run's start and its steps' changes, in their order, in one insert.
  await appendEvents(db, [
    ...(run.status === 'pending' ? [{ type: 'run.running', machineId: run.machineId, at: now, actor: 'system', action: 'running', reason: null, details: { run: runId, kind: run.kind } }] : []),
    ...changed.map((step) => ({ type: 'run.step', machineId: run.machineId, at: now, actor: 'system', action: status, reason: message, details: { run: runId, kind: run.kind, step, status } })),
  ]);
  return { ...run, startedAt, status: run.status === 'pending' ? 'running' : run.status };
}

export async function appendRunLog(db: Db, runId: string, lines: { at: string; stream: string; line: string }[]): Promise<void> {
  if (lines.length === 0) return;
  await db
    .insertInto('run_logs')
    .values(lines.map((l) => ({ run_id: runId, at: l.at, stream: l.stream, line: l.line })))
    .execute();
}

/**
 * Appends installer output within the run's log budget: the bytes are reserved on the run
 * row by a conditional update first (so concurrent batches cannot overshoot together), and
 * nothing is stored when the batch would pass `limit`. False: refused.
 */
export async function appendRunLogWithin(db: Db, runId: string, lines: { at: string; stream: string; line: string }[], limit: number): Promise<boolean> {
  const bytes = lines.reduce((n, l) => n + Buffer.byteLength(l.line) + Buffer.byteLength(l.stream), 0);
  const r = await db
    .updateTable('runs')
    .set({ log_bytes: sql<number>`log_bytes + ${bytes}` })
    .where('id', '=', runId)
    .where(sql<number>`log_bytes + ${bytes}`, '<=', limit)
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) return false;
  await appendRunLog(db, runId, lines);
  return true;
}

export async function readRunLog(db: Db, runId: string, page: { limit: number; after?: number }): Promise<RunLogLine[]> {
  let q = db.selectFrom('run_logs').select(['id', 'at', 'stream', 'line']).where('run_id', '=', runId);
  if (page.after !== undefined) q = q.where('id', '>', page.after);
  const rows = await q.orderBy('id').limit(page.limit).execute();
  return rows.map((r) => ({ id: Number(r.id), at: r.at, stream: r.stream, line: r.line }));
}

export const sha256 = (body: string | Buffer): string => createHash('sha256').update(body).digest('hex');

/** Stores a rendered artifact with its run (replacing one of the same name). */
export async function putArtifact(db: Db, runId: string, a: { name: string; contentType: string; body: string; now: string }): Promise<void> {
  await db.deleteFrom('run_artifacts').where('run_id', '=', runId).where('name', '=', a.name).execute();
  await db
    .insertInto('run_artifacts')
    .values({ run_id: runId, name: a.name, content_type: a.contentType, body: a.body, sha256: sha256(a.body), created_at: a.now })
    .execute();
}

export async function listArtifacts(db: Db, runId: string): Promise<RunArtifact[]> {
  const rows = await db
    .selectFrom('run_artifacts')
    .select(['name', 'content_type', 'sha256', 'body', 'created_at'])
    .where('run_id', '=', runId)
    .orderBy('name')
    .execute();
  return rows.map((r) => ({
    name: r.name,
    contentType: r.content_type,
    sha256: r.sha256,
    size: Buffer.byteLength(r.body),
    createdAt: r.created_at,
  }));
}

export async function getArtifact(db: Db, runId: string, name: string): Promise<{ contentType: string; body: string; sha256: string }> {
  const r = await db
    .selectFrom('run_artifacts')
    .select(['content_type', 'body', 'sha256'])
    .where('run_id', '=', runId)
    .where('name', '=', name)
    .executeTakeFirst();
  if (!r) throw new PlinthError('not_found', `artifact '${name}' of run '${runId}' not found`);
  return { contentType: r.content_type, body: r.body, sha256: r.sha256 };
}
