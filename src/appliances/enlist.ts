import type { Store } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { MACHINE_NAME_PATTERN, readableName } from '../core/ids.js';
import { PlinthError } from '../core/errors.js';
import type { Enroller } from '../inventory/enrol.js';
import type { LifecycleEngine } from '../lifecycle/engine.js';
import type { PowerService } from '../power/service.js';
import type { Actor, Machine } from '../inventory/machine.js';
import type { MachineChanges } from '../inventory/machine-rows.js';
import { normalizeIdentity } from '../inventory/identity.js';
import type { DiscoveredSystem } from '../providers/types.js';
import type { ApplianceService } from './service.js';
import { checkProviderRef } from '../inventory/provider-link.js';

export interface EnlistEntry {
  system: DiscoveredSystem;
  outcome: 'created' | 'matched' | 'conflict';
  machine: Machine | null;
  note: string | null;
  inspecting: boolean;
}

/**
 * `appliance enlist`: every system behind an appliance becomes a machine linked to it,
 * identified by what the appliance reports (UUID, serial, MACs) — an existing machine is
 * matched and linked, never duplicated; one already linked elsewhere is a conflict. With
 * `inspect`, each machine is sent to inspection (which powers it on through the appliance).
 */
/** Why a discovered system's reference cannot be linked, or null when it can. */
function refOffEndpoint(appliance: { type: string; address: string }, ref: string): string | null {
  try {
    checkProviderRef(appliance, ref);
    return null;
  } catch (e) {
    if (e instanceof PlinthError) return e.message;
    throw e;
  }
}

export class Enlister {
  constructor(
    private readonly d: {
      store: Store;
      clock: Clock;
      enroller: Enroller;
      engine: LifecycleEngine;
      appliances: ApplianceService;
      power: PowerService;
    },
  ) {}

  async enlist(applianceKey: string, o: { inspect: boolean; systems?: string[]; waitMs: number; actor: Actor }): Promise<EnlistEntry[]> {
    const appliance = await this.d.appliances.get(applianceKey);
    const job = await this.d.power.wait((await this.d.power.enqueueForAppliance(appliance.name, { kind: 'enumerate' })).id, o.waitMs);
    if (job.status === 'failed') {
      throw new PlinthError('unavailable', `appliance ${appliance.name} could not list its systems: ${job.error?.message}`, { details: { appliance: appliance.name, job: job.id } });
    }
    if (job.status !== 'succeeded') {
      throw new PlinthError('timeout', `appliance ${appliance.name} did not list its systems within ${Math.round(o.waitMs / 1000)} s (job ${job.id} is ${job.status})`, {
        details: { appliance: appliance.name, job: job.id },
      });
    }
    let systems = (job.result as { systems?: DiscoveredSystem[] }).systems ?? [];
    if (o.systems?.length) {
      const unknown = o.systems.filter((s) => !systems.some((x) => x.ref === s || x.name === s));
      if (unknown.length) throw new PlinthError('validation', `systems: ${unknown.join(', ')} not found behind appliance ${appliance.name}`, { details: { field: 'systems' } });
      systems = systems.filter((s) => o.systems!.includes(s.ref) || (s.name !== undefined && o.systems!.includes(s.name)));
    }
    const out: EnlistEntry[] = [];
    for (const system of systems) {
      // The device's own answer names the references: one that leaves its endpoint is not linked.
      const offEndpoint = refOffEndpoint(appliance, system.ref);
      if (offEndpoint) out.push({ system, outcome: 'conflict', machine: null, note: offEndpoint, inspecting: false });
      else out.push(await this.enlistOne(appliance.id, appliance.name, system, o.actor));
    }
    if (o.inspect) {
      for (const e of out) {
        if (!e.machine || !['enrolled', 'available'].includes(e.machine.state)) continue;
        const r = await this.d.engine.act(e.machine.id, 'inspect', { actor: o.actor, reason: `enlisted from ${appliance.name}` });
        e.machine = r.machine;
        e.inspecting = true;
      }
    }
    return out;
  }

  private async enlistOne(applianceId: string, applianceName: string, system: DiscoveredSystem, actor: Actor): Promise<EnlistEntry> {
    // What the appliance reports about the system (UUID, serial, manufacturer, product, MACs).
    const identity = normalizeIdentity(system);
    const at = iso(this.d.clock.now());
    const power: MachineChanges = system.powerState ? { power_state: system.powerState, power_read_at: at, power_source: 'enlist' } : {};
    const r = await this.d.enroller.findOrEnrol(identity, {
      actor,
      known: {
        lock: true,
        refuse: (m) =>
          m.provider.applianceId && (m.provider.applianceId !== applianceId || m.provider.ref !== system.ref)
            ? `machine ${m.name} is already linked to another appliance or system`
            : null,
        set: () => ({ appliance_id: applianceId, provider_ref: system.ref, ...power }),
        // The appliance reports what it knows of the system: a matched machine learns it.
        absorb: true,
      },
      enrol: async (trx) => {
        const wanted = (system.name ?? '').toLowerCase();
        const nameFree = new RegExp(MACHINE_NAME_PATTERN).test(wanted) && !(await trx.selectFrom('machines').select('id').where('name', '=', wanted).executeTakeFirst());
        return {
          name: nameFree ? wanted : readableName(),
          input: { provider: { applianceId, ref: system.ref } },
          reason: `enlisted from appliance ${applianceName}`,
          set: power,
        };
      },
    });
    if (r.outcome === 'refused') return { system, outcome: 'conflict', machine: r.machine, note: r.why, inspecting: false };
    if (r.outcome === 'matched') return { system, outcome: 'matched', machine: r.machine, note: `matched by ${r.matchedBy}`, inspecting: false };
    return { system, outcome: 'created', machine: r.machine, note: null, inspecting: false };
  }
}
