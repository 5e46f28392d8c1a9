import type { Db } from '../store/database.js';
import type { Facts } from '../core/facts.js';
import type { MachinesTable } from '../store/schema.js';
import type { LifecycleEngine } from '../lifecycle/engine.js';
import type { InventoryService } from '../inventory/service.js';
import type { Machine } from '../inventory/machine.js';
import { normalizeIdentity, resolveIdentity } from '../inventory/identity.js';
import { findIdentityCandidates, requireMachine } from '../inventory/machine-rows.js';
import { PlinthError } from '../core/errors.js';
import type { Run } from '../runs/runs.js';
import { getRun, updateStep } from '../runs/runs.js';

/**
 * What happens when an agent reports facts at the end of an inspection, all in one
 * transaction with the machine locked: the facts are stored, what they say about identity is
 * absorbed (conflicts recorded), the hooks run (profile matching), and the machine becomes
 * `available`.
 */
export type InspectionHook = (trx: Db, machine: Machine, facts: Facts, run: Run) => Promise<Partial<MachinesTable> | void>;

export function identityFromFacts(facts: Facts) {
  return normalizeIdentity({
    systemUuid: facts.system.uuid,
    serial: facts.system.serial,
    assetTag: facts.system.assetTag,
    manufacturer: facts.system.manufacturer,
    productName: facts.system.productName,
    macs: facts.nics.map((n) => n.mac),
  });
}

export class InspectionService {
  private readonly hooks: InspectionHook[] = [];

  constructor(
    private readonly engine: LifecycleEngine,
    private readonly inventory: InventoryService,
  ) {}

  /** Registers work to do inside the inspection's transaction (e.g. matching a profile). */
  onInspected(hook: InspectionHook): void {
    this.hooks.push(hook);
  }

  async complete(machineId: string, runId: string, facts: Facts, at: string): Promise<Machine> {
    const actor = { kind: 'agent' as const, name: `run:${runId}` };
    const r = await this.engine.act(machineId, 'inspect-done', {
      actor,
      runId,
      reason: 'facts received',
      alsoInTransaction: async (trx, machine) => {
        const reported = identityFromFacts(facts);
        // Facts that identify another known machine come from the wrong installer (a token used
        // on the wrong machine): refuse them rather than merge two machines' identities.
        const other = resolveIdentity(reported, await findIdentityCandidates(trx, reported));
        if (other.machineId && other.machineId !== machine.id) {
          const owner = await requireMachine(trx, this.engine.store.dialect, other.machineId);
          throw new PlinthError('conflict', `these facts identify machine ${owner.name} (by ${other.matchedBy}), not ${machine.name} whose run token was used`, {
            details: { machine: machine.name, identifies: owner.name, matchedBy: other.matchedBy },
          });
        }
        const m = await this.inventory.absorbIdentity(trx, machine, reported, actor);
        const run = await getRun(trx, runId);
        const extra: Partial<MachinesTable> = { facts: JSON.stringify(facts) };
        for (const hook of this.hooks) Object.assign(extra, (await hook(trx, m, facts, run)) ?? {});
        await updateStep(trx, runId, 'report-facts', 'succeeded', at);
        await updateStep(trx, runId, 'match-profile', 'succeeded', at);
        return extra;
      },
    });
    return r.machine;
  }
}
