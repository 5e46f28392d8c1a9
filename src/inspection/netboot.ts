import { isIP } from 'node:net';
import type { Db, Dialect } from '../store/database.js';
import { fromJson } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import type { Facts } from '../core/facts.js';
import type { Actor, Machine } from '../inventory/machine.js';
import { actorLabel } from '../inventory/machine.js';
import { recordEvent } from '../inventory/events.js';
import { requireMachine } from '../inventory/machine-rows.js';
import type { NetbootCorrelation } from '../inventory/enrol.js';
import { sameUuid, type Identity } from '../inventory/identity.js';
import { parseIpmiAddress } from '../providers/ipmi/index.js';

/**
 * A machine enlisted from a BMC that gave no identity (no System GUID, no FRU) has nothing a
 * boot request can be matched by: its first network boot would enrol a second machine. When
 * the controller itself has just powered such a machine on to boot from the network, an
 * unknown boot request is taken to be that machine — provisionally, until the inspection's
 * facts confirm it (docs/lifecycle.md, "Identity"):
 *
 * - exactly one such machine awaits its network boot: the request is that machine (event
 *   `netboot-correlated`; nothing is absorbed from the request itself);
 * - several: none of them is guessed; a new machine is enrolled and every one of them gets a
 *   `netboot-ambiguous` event naming the others;
 * - the facts report the BMC's address in-band: equal to the appliance's address confirms
 *   (`netboot-confirmed`, evidence `bmc-address`), another address reverts (the run fails,
 *   nothing is absorbed); without one the timing stands alone (evidence `timing`).
 */

export const NETBOOT_CORRELATED = 'netboot-correlated';

/**
 * Only an inspection waits this way: it writes nothing to the machine and ends with the facts
 * that confirm or undo the correlation. A wipe of a machine with no identity is never handed to
 * an unknown boot (the wrong machine's disks would be erased); that boot enrols a new machine.
 */
const AWAITING_STATES = ['inspecting'];
/** Appliances that are one machine's BMC (the address a machine can report in-band). */
const BMC_TYPES = ['ipmi', 'redfish'];
/** The controller powered it on: its boot job for the current run ran or is running. */
const STARTED_JOBS = ['running', 'succeeded'];

interface Correlated {
  run: string;
  identity: Pick<Identity, 'systemUuid' | 'serial' | 'macs'>;
}

/** Whether two unauthenticated reports name the same machine (a retried boot request). */
const sameReporter = (a: Correlated['identity'], b: Identity): boolean =>
  sameUuid(a.systemUuid, b.systemUuid) || (a.serial !== null && a.serial === b.serial) || a.macs.some((m) => b.macs.includes(m));

/** The `netboot-correlated` events of these machines. */
async function correlations(db: Db, machineIds: string[]): Promise<Array<Correlated & { machineId: string }>> {
  if (machineIds.length === 0) return [];
  const rows = await db.selectFrom('events').select(['machine_id', 'details']).where('action', '=', NETBOOT_CORRELATED).where('machine_id', 'in', machineIds).execute();
  return rows.map((r) => ({ machineId: r.machine_id ?? '', ...fromJson<Correlated>(r.details, { run: '', identity: { systemUuid: null, serial: null, macs: [] } }) }));
}

export function netbootCorrelation(d: { dialect: Dialect; clock: Clock; actor: Actor }): NetbootCorrelation {
  return {
    async find(trx, reported) {
      const now = iso(d.clock.now());
      const rows = await trx
        .selectFrom('machines')
        .innerJoin('appliances', 'appliances.id', 'machines.appliance_id')
        .select(['machines.id as id', 'machines.current_run_id as runId'])
        .where('machines.state', 'in', AWAITING_STATES)
        .where('machines.maintenance', '=', 0)
        .where('machines.current_run_id', 'is not', null)
        .where('machines.state_deadline', '>', now)
        .where('machines.system_uuid', 'is', null)
        .where('machines.serial', 'is', null)
        .where('machines.asset_tag', 'is', null)
        .where('appliances.type', 'in', BMC_TYPES)
        .where((eb) => eb.not(eb.exists(eb.selectFrom('machine_macs').select('machine_macs.mac').whereRef('machine_macs.machine_id', '=', 'machines.id'))))
        .where((eb) =>
          eb.exists(
            eb
              .selectFrom('provider_jobs')
              .select('provider_jobs.id')
              .whereRef('provider_jobs.run_id', '=', 'machines.current_run_id')
              .where('provider_jobs.kind', '=', 'boot')
              .where('provider_jobs.status', 'in', STARTED_JOBS),
          ),
        )
        .orderBy('machines.name')
        .execute();
      if (rows.length === 0) return null;
      // Locked, so that two unknown machines booting at once cannot both be taken for one.
      for (const r of rows) await requireMachine(trx, d.dialect, r.id, { lock: true });
      const taken = await correlations(trx, rows.map((r) => r.id));
      const free: string[] = [];
      for (const r of rows) {
        const c = taken.find((e) => e.machineId === r.id && e.run === r.runId);
        // Already taken by this very reporter (an iPXE retry): the same machine again.
        if (c && sameReporter(c.identity, reported)) return { machineId: r.id };
        if (!c) free.push(r.id);
      }
      if (free.length !== 1) return free.length === 0 ? null : { ambiguous: free };
      const m = await requireMachine(trx, d.dialect, free[0]!);
      const identity: Correlated['identity'] = { systemUuid: reported.systemUuid, serial: reported.serial, macs: reported.macs };
      await recordEvent(trx, {
        machineId: m.id,
        at: now,
        actor: actorLabel(d.actor),
        action: NETBOOT_CORRELATED,
        fromState: m.state,
        toState: m.state,
        reason: 'an unknown machine network-booted while this machine, which has no identity, was the only one awaiting the network boot the controller started; taken to be it until its facts confirm',
        details: { run: m.currentRunId, identity },
      });
      return { machineId: m.id };
    },

    async ambiguous(trx, enrolled, candidates) {
      const names = await trx.selectFrom('machines').select(['id', 'name']).where('id', 'in', candidates).orderBy('name').execute();
      const at = iso(d.clock.now());
      const list = names.map((n) => n.name).join(', ');
      const event = (machineId: string, state: string) =>
        recordEvent(trx, {
          machineId,
          at,
          actor: actorLabel(d.actor),
          action: 'netboot-ambiguous',
          fromState: state,
          toState: state,
          reason: `machine ${enrolled.name} network-booted while ${list} were each awaiting the network boot the controller started, with no identity to tell them apart; enrolled as a new machine rather than guessed (an operator settles which it is)`,
          details: { enrolled: enrolled.name, candidates: names.map((n) => n.name) },
        });
      await event(enrolled.id, enrolled.state);
      for (const c of names) await event(c.id, (await requireMachine(trx, d.dialect, c.id)).state);
    },
  };
}

/** The host of a BMC appliance's address, when it is an IP address (a name is not compared). */
export function bmcAddressOf(type: string, address: string): string | null {
  let host: string | null = null;
  try {
    if (type === 'ipmi') host = parseIpmiAddress(address).host;
    else if (type === 'redfish') host = new URL(address).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return null;
  }
  return host !== null && isIP(host) ? host : null;
}

export type NetbootVerdict = { kind: 'none' } | { kind: 'confirmed'; evidence: 'bmc-address' | 'timing'; detail: string } | { kind: 'contradicted'; why: string };

/**
 * What the facts of a run say about its machine's provisional correlation: nothing to judge
 * (the machine was not correlated in this run), confirmed, or contradicted by the BMC address
 * the installer read in-band.
 */
export async function judgeNetboot(db: Db, machine: Machine, runId: string, facts: Facts): Promise<NetbootVerdict> {
  const c = (await correlations(db, [machine.id])).find((e) => e.run === runId);
  if (!c) return { kind: 'none' };
  const reported = facts.bmc?.ipv4 ?? null;
  const appliance = machine.provider.applianceId
    ? await db.selectFrom('appliances').select(['name', 'type', 'address']).where('id', '=', machine.provider.applianceId).executeTakeFirst()
    : undefined;
  const expected = appliance ? bmcAddressOf(appliance.type, appliance.address) : null;
  if (reported === null || expected === null) {
    return { kind: 'confirmed', evidence: 'timing', detail: reported === null ? 'the installer read no BMC address in-band' : `appliance ${appliance?.name ?? '?'} has no IP address to compare with ${reported}` };
  }
  if (reported === expected) return { kind: 'confirmed', evidence: 'bmc-address', detail: `the installer read BMC address ${reported}, the address of appliance ${appliance!.name}` };
  return {
    kind: 'contradicted',
    why: `the machine that network-booted as ${machine.name} reports BMC address ${reported}, but ${machine.name} is behind appliance ${appliance!.name} at ${expected}: it is another machine, and its identity is not absorbed`,
  };
}

/** Records a confirmed correlation on the machine. */
export async function recordNetbootConfirmed(db: Db, machine: Machine, runId: string, verdict: Extract<NetbootVerdict, { kind: 'confirmed' }>, actor: Actor, at: string): Promise<void> {
  await recordEvent(db, {
    machineId: machine.id,
    at,
    actor: actorLabel(actor),
    action: 'netboot-confirmed',
    fromState: machine.state,
    toState: machine.state,
    reason: verdict.detail,
    details: { run: runId, evidence: verdict.evidence },
  });
}
