import type { Store } from '../store/database.js';
import { validation } from '../core/errors.js';
import { decodeCursor, pageOf, type Page } from '../core/pagination.js';
import { readTrace } from './trace.js';
import { getArtifact, getRun, listArtifacts, listRuns, readRunLog, type Run, type RunArtifact, type RunLogLine } from './runs.js';

/**
 * Reading runs for operators: one run, its log, its artifacts, a machine's runs page by page.
 * Runs are written by the lifecycle engine and the agent session; this is the read side the
 * API and the CLI see, so that no route holds a database handle.
 */
export class RunService {
  constructor(private readonly store: Store) {}

  get(id: string): Promise<Run> {
    return getRun(this.store.db, id);
  }

  /** Log lines after line id `after`; not_found for an unknown run. */
  async log(id: string, page: { limit: number; after?: number }): Promise<RunLogLine[]> {
    const run = await this.get(id);
    return readRunLog(this.store.db, run.id, page);
  }

  async artifacts(id: string): Promise<RunArtifact[]> {
    const run = await this.get(id);
    return listArtifacts(this.store.db, run.id);
  }

  artifact(runId: string, name: string): Promise<{ contentType: string; body: string; sha256: string }> {
    return getArtifact(this.store.db, runId, name);
  }

  /** A machine's runs, newest first; the cursor is the one the previous page returned. */
  async ofMachine(machineId: string, page: { limit: number; cursor?: string | undefined }): Promise<Page<Run>> {
    let before: { createdAt: string; id: string } | undefined;
    if (page.cursor) {
      const [createdAt, id] = decodeCursor(page.cursor).split('|');
      if (!createdAt || !id) throw validation('cursor', 'is not a cursor this API returned');
      before = { createdAt, id };
    }
    const rows = await listRuns(this.store.db, machineId, { limit: page.limit + 1, ...(before !== undefined ? { before } : {}) });
    return pageOf(rows, page.limit, (r) => `${r.createdAt}|${r.id}`);
  }

  /** The boot trace: a machine's newest boot attempts, each with every stage the boot service saw. */
  trace(machineId: string, attempts: number): ReturnType<typeof readTrace> {
    return readTrace(this.store.db, machineId, attempts);
  }
}
