import type { Db, Store } from '../store/database.js';
import { fromJson } from '../store/database.js';
import type { HwTuple } from '../core/facts.js';
import { notFound } from '../core/errors.js';
import type { ScriptResult } from '../protocol/agent.js';
import { HEALTH_SCRIPT_NAME } from './script.js';
import { healthMetrics, parseHealthFiles } from './parse.js';
import { compareHealth, type CompareOptions, type HealthComparison } from './compare.js';

/**
 * A machine's health runs: each is the result of the health script (script.ts) kept with
 * the machine's script results, its figures read from the files it left (parse.ts). The
 * latest run's tuples also go into the machine's facts (`hw`) when the run reports them.
 */
export interface HealthRecord {
  machine: string;
  runId: string;
  finishedAt: string;
  /** passed: the script exited 0; failed: it stopped early (its output says why). */
  status: 'passed' | 'failed';
  durationMs: number;
  tuples: HwTuple[];
  /** `class/id/key` → value: the figures compared between machines. */
  figures: Record<string, number>;
  problems: string[];
}

type Row = { run_id: string; finished_at: string; exit_code: number | null; duration_ms: number; files: string };

function recordOf(machine: string, r: Row): HealthRecord {
  const files = Object.fromEntries(fromJson<ScriptResult['files']>(r.files, []).map((f) => [f.name, Buffer.from(f.content, 'base64').toString('utf8')]));
  const { tuples, problems } = parseHealthFiles(files);
  return { machine, runId: r.run_id, finishedAt: r.finished_at, status: r.exit_code === 0 ? 'passed' : 'failed', durationMs: r.duration_ms, tuples, figures: healthMetrics(tuples), problems };
}

const COLUMNS = ['run_id', 'finished_at', 'exit_code', 'duration_ms', 'files'] as const;

/** The tuples a health run's script left (none when the run had no health script). */
export async function healthTuplesOfRun(db: Db, runId: string): Promise<HwTuple[]> {
  const r = await db.selectFrom('script_results').select(COLUMNS).where('run_id', '=', runId).where('name', '=', HEALTH_SCRIPT_NAME).executeTakeFirst();
  return r ? recordOf('', r).tuples : [];
}

export class HealthService {
  constructor(private readonly d: { store: Store }) {}

  /** A machine's health runs, newest first. */
  async history(machineId: string, machineName: string, limit = 20): Promise<HealthRecord[]> {
    const rows = await this.d.store.db
      .selectFrom('script_results')
      .select(COLUMNS)
      .where('machine_id', '=', machineId)
      .where('name', '=', HEALTH_SCRIPT_NAME)
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => recordOf(machineName, r));
  }

  /**
   * The machines matched to a profile, each with its latest passed health run, compared
   * figure by figure (compare.ts). Machines without one are listed as `missing`.
   */
  async compare(profile: string, o: CompareOptions = {}): Promise<HealthComparison & { profile: string; runs: HealthRecord[]; missing: string[] }> {
    const db = this.d.store.db;
    const p = await db.selectFrom('profiles').select(['id', 'name']).where('name', '=', profile).executeTakeFirst();
    if (!p) throw notFound('profile', profile);
    const machines = await db.selectFrom('machines').select(['id', 'name']).where('profile_id', '=', p.id).orderBy('name').execute();
    const runs: HealthRecord[] = [];
    const missing: string[] = [];
    for (const m of machines) {
      const r = await db
        .selectFrom('script_results')
        .select(COLUMNS)
        .where('machine_id', '=', m.id)
        .where('name', '=', HEALTH_SCRIPT_NAME)
        .where('exit_code', '=', 0)
        .orderBy('id', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (r) runs.push(recordOf(m.name, r));
      else missing.push(m.name);
    }
    const comparison = compareHealth(Object.fromEntries(runs.map((r) => [r.machine, r.figures])), o);
    return { profile: p.name, ...comparison, runs, missing };
  }
}
