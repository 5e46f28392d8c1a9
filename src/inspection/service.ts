import type { Db } from '../store/database.js';
import type { Facts } from '../core/facts.js';
import type { MachinesTable } from '../store/schema.js';
import type { LifecycleEngine, MachineTransaction } from '../lifecycle/engine.js';
import type { Enroller } from '../inventory/enrol.js';
import type { Machine } from '../inventory/machine.js';
import { normalizeIdentity } from '../inventory/identity.js';
import type { Run } from '../runs/runs.js';
import { getRun, updateSteps } from '../runs/runs.js';
import { PlinthError } from '../core/errors.js';
import { judgeNetboot, recordNetbootConfirmed } from './netboot.js';

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
    private readonly enroller: Enroller,
  ) {}

  /** Registers work to do inside the inspection's transaction (e.g. matching a profile). */
  onInspected(hook: InspectionHook): void {
    this.hooks.push(hook);
  }

  async complete(machineId: string, runId: string, facts: Facts, at: string): Promise<Machine> {
    const outcome = await this.engine.withMachine(machineId, (tx) => this.completeIn(tx, tx.machine, runId, facts, at));
    if ('contradiction' in outcome) throw contradicted(machineId, outcome.contradiction);
    return outcome.machine;
  }

  /**
   * The inspection's end inside the caller's transaction (`machine`: the row `tx` locked, as
   * the caller's own transitions left it), for a caller with more to do in it (the agent's
   * facts report). A machine taken for an unknown network boot (inspection/netboot.ts) that
   * turns out to be another has its run failed, and nothing of these facts is absorbed: the
   * caller commits that and then refuses the report (`contradicted`); otherwise the inspection
   * is done.
   */
  async completeIn(tx: MachineTransaction, machine: Machine, runId: string, facts: Facts, at: string): Promise<{ contradiction: string } | { machine: Machine }> {
    const actor = { kind: 'agent' as const, name: `run:${runId}` };
    const verdict = machine.currentRunId === runId ? await judgeNetboot(tx.trx, machine, runId, facts) : { kind: 'none' as const };
    if (verdict.kind === 'contradicted') {
      await tx.act('fail', { actor, runId, reason: verdict.why, error: { code: 'identity', message: verdict.why, stage: 'facts' } });
      return { contradiction: verdict.why };
    }
    const r = await tx.act('inspect-done', {
      actor,
      runId,
      reason: 'facts received',
      alsoInTransaction: async (trx, machine) => {
        if (verdict.kind === 'confirmed') await recordNetbootConfirmed(trx, machine, runId, verdict, actor, at);
        // Refused (a conflict) when the facts identify another known machine.
        const m = await this.enroller.absorbReport(trx, machine, identityFromFacts(facts), actor);
        const run = await getRun(trx, runId);
        const extra: Partial<MachinesTable> = { facts: JSON.stringify(facts) };
        for (const hook of this.hooks) Object.assign(extra, (await hook(trx, m, facts, run)) ?? {});
        await updateSteps(trx, runId, ['report-facts', 'match-profile'], 'succeeded', at, null, run);
        return extra;
      },
    });
    return { machine: r.machine };
  }
}

/** The refusal of facts from a machine that is not the one it network-booted as (its run already failed). */
export const contradicted = (machineId: string, why: string) => new PlinthError('conflict', why, { details: { machineId } });
