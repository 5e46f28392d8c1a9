import type { ApiClient, MachineListQuery } from '../../src/api/client-core.js';
import { messageOf } from './util.js';

export interface BulkResult {
  action: string;
  done: number;
  failed: { name: string; message: string }[];
}

/** Requests in flight at once: enough to finish thousands of machines quickly, few enough to leave the controller room. */
const PARALLEL = 8;

/**
 * Runs an operator action on the named machines, or on every machine a filter matches (the
 * names are read first, so that machines changing state meanwhile are neither skipped nor
 * visited twice). Each machine is asked on its own: one refusal (a state that does not allow
 * the action) does not stop the others.
 */
export async function runBulk(client: ApiClient, action: string, target: string[] | Omit<MachineListQuery, 'limit' | 'cursor' | 'include'>): Promise<BulkResult> {
  let names: string[];
  if (Array.isArray(target)) names = target;
  else {
    names = [];
    for await (const m of client.allMachines({ ...target, limit: 1000 })) names.push(m.name);
  }
  const result: BulkResult = { action, done: 0, failed: [] };
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++]!;
      try {
        await client.action(name, action);
        result.done++;
      } catch (e) {
        result.failed.push({ name, message: messageOf(e) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, names.length) }, worker));
  return result;
}
