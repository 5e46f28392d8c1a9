import type { Db, Store } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { currentAttempt, dhcpAttempt, recordStage } from '../runs/trace.js';
import type { DhcpEvent } from './dnsmasq-log.js';

/** What the boot trace keeps of one DHCP event (no tags: they are dnsmasq's, not the client's). */
export function dhcpStageDetail(e: DhcpEvent): Record<string, unknown> {
  return {
    event: e.kind,
    client: e.client,
    mac: e.mac,
    ...(e.address ? { address: e.address } : {}),
    ...(e.vendorClass ? { vendorClass: e.vendorClass } : {}),
    ...(e.bootFile ? { bootFile: e.bootFile } : {}),
    ...(e.nextServer ? { nextServer: e.nextServer } : {}),
    interface: e.interface,
  };
}

export const PENDING_MACS = 512;
const PENDING_PER_MAC = 8;
const OVERTAKEN_MS = 60_000;

/**
 * DHCP events into the boot trace, as the `dhcp` stage. A known MAC's event is recorded at
 * once: a boot firmware's in the machine's open DHCP-only attempt (see runs/trace.ts), another
 * client's (the installer's) in the machine's newest attempt. An unknown MAC's events
 * wait in memory until a boot request enrols the machine (`adoptPending`, called in the
 * transaction that starts its first attempt): at most PENDING_MACS addresses, the oldest
 * forgotten first, and PENDING_PER_MAC events each — anyone can send DHCP packets.
 */
export class DhcpTrace {
  private readonly pending = new Map<string, { at: string; event: DhcpEvent }[]>();

  constructor(private readonly d: { store: Store; clock: Clock }) {}

  async record(e: DhcpEvent): Promise<'recorded' | 'pending'> {
    const db = this.d.store.db;
    const at = iso(this.d.clock.now());
    const known = await db.selectFrom('machine_macs').select('machine_id').where('mac', '=', e.mac).executeTakeFirst();
    if (!known) {
      this.remember(at, e);
      return 'pending';
    }
    await this.d.store.transaction(async (trx) => {
      // Boot firmware (PXE, iPXE, HTTP boot) starts a boot; any other client (the installer's
      // or an installed OS's) is part of the boot under way.
      // A boot server's answer (proxy mode, port 4011) never starts a boot: it follows the
      // proxy offer of the same one, so it joins the attempt under way even when that attempt
      // has its DHCP stage already (the boot request may have got there before the log was read).
      const newest =
        e.client === 'other' ? await currentAttempt(trx, known.machine_id) : await this.overtaken(trx, known.machine_id, at, { continuing: e.kind === 'boot-server' });
      const attemptId = newest ?? (await dhcpAttempt(trx, { machineId: known.machine_id, at, bootMac: e.mac }));
      await recordStage(trx, { machineId: known.machine_id, attemptId, runId: null, at, stage: 'dhcp', detail: dhcpStageDetail(e) });
    });
    return 'recorded';
  }

  /**
   * The attempt a firmware's DHCP answer led to when the boot request got there first (the
   * log is read asynchronously, and iPXE asks for its script the moment it has an address):
   * the newest attempt, when it has no DHCP stage and started less than OVERTAKEN_MS ago.
   * A `continuing` answer (the boot server's, after the offer) needs only the latter.
   */
  private async overtaken(trx: Db, machineId: string, at: string, o: { continuing: boolean }): Promise<string | null> {
    const newest = await trx.selectFrom('boot_attempts').select(['id', 'started_at']).where('machine_id', '=', machineId).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    if (!newest || Date.parse(at) - Date.parse(newest.started_at) > OVERTAKEN_MS) return null;
    if (o.continuing) return newest.id;
    const dhcp = await trx.selectFrom('boot_trace').select('id').where('attempt_id', '=', newest.id).where('stage', '=', 'dhcp').limit(1).executeTakeFirst();
    return dhcp ? null : newest.id;
  }

  private remember(at: string, e: DhcpEvent): void {
    const list = this.pending.get(e.mac) ?? [];
    this.pending.delete(e.mac); // re-inserted last: the map's order is oldest first
    list.push({ at, event: e });
    this.pending.set(e.mac, list.slice(-PENDING_PER_MAC));
    while (this.pending.size > PENDING_MACS) this.pending.delete(this.pending.keys().next().value!);
  }

  /** How many MACs have events waiting (for tests and the log). */
  get pendingMacs(): number {
    return this.pending.size;
  }

  /** Records the waiting events of a just-identified machine's MACs into its attempt. */
  async adoptPending(trx: Db, a: { machineId: string; attemptId: string; runId: string | null; macs: string[] }): Promise<void> {
    for (const mac of a.macs) {
      const list = this.pending.get(mac);
      if (!list) continue;
      this.pending.delete(mac);
      for (const { at, event } of list) {
        await recordStage(trx, { machineId: a.machineId, attemptId: a.attemptId, runId: a.runId, at, stage: 'dhcp', detail: dhcpStageDetail(event) });
      }
    }
  }
}
