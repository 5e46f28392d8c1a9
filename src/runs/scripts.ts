import type { Db, Store } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { fromJson, uniqueViolation } from '../store/database.js';
import type { Selectable } from 'kysely';
import type { ScriptResultsTable, ScriptsTable } from '../store/schema.js';
import { PlinthError, notFound } from '../core/errors.js';
import type { Script, ScriptResult } from '../protocol/agent.js';
import type { Machine } from '../inventory/machine.js';

/**
 * Operators' scripts (MAAS's commissioning and testing scripts, hardcap's discovery scripts):
 * the controller's library, and what each run of a script on a machine gave. Library scripts
 * marked `inspect` run in every inspection, before the facts; a script given with an
 * `inspect` action runs instead of them (a test run on an available machine).
 */
export const DEFAULT_SCRIPT_TIMEOUT_SECONDS = 3600;

/**
 * What a machine's scripts get as $PLINTH_VARIABLES (inspect runs and a deploy's configure
 * step alike): its profile's variables (matched spec variables, pool entry), its identity and
 * tags, and its profile's name.
 */
export function scriptVariables(m: Machine, profile: { vars: Record<string, unknown>; profile: string | null } | null): Record<string, unknown> {
  return {
    ...(profile?.vars ?? {}),
    machine: { id: m.id, name: m.name, serial: m.identity.serial, uuid: m.identity.systemUuid, assetTag: m.identity.assetTag, tags: m.tags },
    profile: profile?.profile ?? null,
  };
}

export interface LibraryScript extends Script {
  inspect: boolean;
  description: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface ScriptRecord {
  id: number;
  machineId: string;
  runId: string;
  name: string;
  exitCode: number | null;
  timedOut: boolean;
  /** passed: exit 0; failed: anything else. */
  status: 'passed' | 'failed';
  durationMs: number;
  output: string;
  /** The files it left: names and sizes (contents: `scriptFile`). */
  files: { name: string; sizeBytes: number; truncated: boolean }[];
  finishedAt: string;
}

const toLibrary = (r: ScriptsTable): LibraryScript => ({
  name: r.name,
  content: r.content,
  timeoutSeconds: r.timeout_seconds,
  inspect: r.inspect === 1,
  description: r.description,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const toRecord = (r: Selectable<ScriptResultsTable>): ScriptRecord => ({
  id: Number(r.id),
  machineId: r.machine_id,
  runId: r.run_id,
  name: r.name,
  exitCode: r.exit_code,
  timedOut: r.timed_out === 1,
  status: r.exit_code === 0 ? 'passed' : 'failed',
  durationMs: r.duration_ms,
  output: r.output,
  files: fromJson<ScriptResult['files']>(r.files, []).map((f) => ({ name: f.name, sizeBytes: f.sizeBytes, truncated: f.truncated })),
  finishedAt: r.finished_at,
});

export async function listScripts(db: Db): Promise<LibraryScript[]> {
  return (await db.selectFrom('scripts').selectAll().orderBy('name').execute()).map(toLibrary);
}

export async function getScript(db: Db, name: string): Promise<LibraryScript> {
  const r = await db.selectFrom('scripts').selectAll().where('name', '=', name).executeTakeFirst();
  if (!r) throw notFound('script', name);
  return toLibrary(r);
}

/** The scripts every inspection runs, in name order. */
export async function inspectionScripts(db: Db): Promise<Script[]> {
  const rows = await db.selectFrom('scripts').select(['name', 'content', 'timeout_seconds']).where('inspect', '=', 1).orderBy('name').execute();
  return rows.map((r) => ({ name: r.name, content: r.content, timeoutSeconds: r.timeout_seconds }));
}

/** Creates or replaces a library script; says which it did. */
export async function putScript(
  db: Db,
  s: { name: string; content: string; inspect: boolean; timeoutSeconds: number; description: string | null },
  now: string,
): Promise<{ script: LibraryScript; created: boolean }> {
  const row = { content: s.content, inspect: s.inspect ? 1 : 0, timeout_seconds: s.timeoutSeconds, description: s.description, updated_at: now };
  const updated = await db.updateTable('scripts').set(row).where('name', '=', s.name).executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0) {
    try {
      await db.insertInto('scripts').values({ name: s.name, created_at: now, ...row }).execute();
    } catch (e) {
      if (uniqueViolation(e)) throw new PlinthError('conflict', `script ${s.name} was created meanwhile; send it again to replace it`);
      throw e;
    }
    return { script: await getScript(db, s.name), created: true };
  }
  return { script: await getScript(db, s.name), created: false };
}

export async function deleteScript(db: Db, name: string): Promise<void> {
  const r = await db.deleteFrom('scripts').where('name', '=', name).executeTakeFirst();
  if (Number(r.numDeletedRows) === 0) throw notFound('script', name);
}

/** One script's result in a run; a second report of the same script in the run is refused. */
export async function recordScriptResult(db: Db, r: { machineId: string; runId: string; name: string; result: ScriptResult; now: string }): Promise<ScriptRecord> {
  try {
    await db
      .insertInto('script_results')
      .values({
        machine_id: r.machineId,
        run_id: r.runId,
        name: r.name,
        exit_code: r.result.exitCode,
        timed_out: r.result.timedOut ? 1 : 0,
        duration_ms: r.result.durationMs,
        output: r.result.output,
        files: JSON.stringify(r.result.files),
        finished_at: r.now,
      })
      .execute();
  } catch (e) {
    if (uniqueViolation(e)) throw new PlinthError('conflict', `run ${r.runId} already reported script ${r.name}`, { details: { field: 'name' } });
    throw e;
  }
  const row = await db.selectFrom('script_results').selectAll().where('run_id', '=', r.runId).where('name', '=', r.name).executeTakeFirstOrThrow();
  return toRecord(row);
}

/** A machine's script results, newest first. */
export async function machineScriptResults(db: Db, machineId: string, limit = 100): Promise<ScriptRecord[]> {
  const rows = await db.selectFrom('script_results').selectAll().where('machine_id', '=', machineId).orderBy('id', 'desc').limit(limit).execute();
  return rows.map(toRecord);
}

/** One file a script left, as bytes. */
export async function scriptFile(db: Db, machineId: string, resultId: number, name: string): Promise<Buffer> {
  const row = await db.selectFrom('script_results').select('files').where('machine_id', '=', machineId).where('id', '=', resultId).executeTakeFirst();
  const file = fromJson<ScriptResult['files']>(row?.files, []).find((f) => f.name === name);
  if (!file) throw notFound('script file', `${resultId}/${name}`);
  return Buffer.from(file.content, 'base64');
}

/** The library and the results, for the API (routes hold no database handle). */
export class ScriptService {
  constructor(private readonly d: { store: Store; clock: Clock }) {}

  list(): Promise<LibraryScript[]> {
    return listScripts(this.d.store.db);
  }

  get(name: string): Promise<LibraryScript> {
    return getScript(this.d.store.db, name);
  }

  put(s: { name: string; content: string; inspect?: boolean; timeoutSeconds?: number; description?: string }): Promise<{ script: LibraryScript; created: boolean }> {
    return putScript(
      this.d.store.db,
      { name: s.name, content: s.content, inspect: s.inspect ?? false, timeoutSeconds: s.timeoutSeconds ?? DEFAULT_SCRIPT_TIMEOUT_SECONDS, description: s.description ?? null },
      iso(this.d.clock.now()),
    );
  }

  delete(name: string): Promise<void> {
    return deleteScript(this.d.store.db, name);
  }

  results(machineId: string, limit?: number): Promise<ScriptRecord[]> {
    return machineScriptResults(this.d.store.db, machineId, limit);
  }

  file(machineId: string, resultId: number, name: string): Promise<Buffer> {
    return scriptFile(this.d.store.db, machineId, resultId, name);
  }
}
