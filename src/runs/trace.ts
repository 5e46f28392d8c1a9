import type { Db } from '../store/database.js';
import { fromJson, toJson } from '../store/database.js';
import { newId } from '../core/ids.js';
import { updateMachineRow, type MachineChanges } from '../inventory/machine-rows.js';

/**
 * The boot trace: every request the boot service sees, recorded against the machine and
 * its boot attempt, so that "it didn't PXE boot" becomes "its firmware fetched the script but
 * never asked for the kernel". Stages, in the order a healthy boot shows them:
 *
 * - `dhcp`          Plinth's dnsmasq answered the machine (dhcp.mode proxy/full; detail: what
 *                   kind of client asked, the address and boot file it got); before any HTTP
 *                   request, so an attempt can hold DHCP stages and nothing else ("it got an
 *                   address but never fetched the script")
 * - `chain-script`  the firmware fetched /boot.ipxe (tied to the machine by a nonce)
 * - `machine-script` the per-machine script was served (detail: the decision)
 * - `kernel`, `initrd` an installer artifact was fetched (detail: bytes sent, range)
 * - `agent-hello`   the installer's agent started and authenticated
 * - `facts`         the agent reported facts
 * - `step:NAME:STATUS` a deploy or wipe step changed status
 * - `installed-os`  the installed OS reported in on first boot
 * - `local-boot`    the machine was told to boot from its disk
 */
export interface TraceEntry {
  id: number;
  at: string;
  stage: string;
  runId: string | null;
  detail: Record<string, unknown> | null;
}

export interface BootAttempt {
  id: string;
  startedAt: string;
  runId: string | null;
  decision: string;
  remoteAddr: string | null;
  platform: string | null;
  arch: string | null;
  bootMac: string | null;
  stages: TraceEntry[];
}

type AttemptStart = { machineId: string; runId: string | null; at: string; remoteAddr: string | null; platform: string | null; arch: string | null; bootMac: string | null; decision: string };

async function insertAttempt(db: Db, a: AttemptStart): Promise<string> {
  const id = newId();
  await db
    .insertInto('boot_attempts')
    .values({
      id,
      machine_id: a.machineId,
      run_id: a.runId,
      started_at: a.at,
      remote_addr: a.remoteAddr,
      platform: a.platform,
      arch: a.arch,
      boot_mac: a.bootMac,
      decision: a.decision,
    })
    .execute();
  return id;
}

/** The attempt a boot request starts — or continues, when a DHCP exchange opened it. */
export async function startAttempt(db: Db, a: AttemptStart): Promise<string> {
  const opened = await openDhcpAttempt(db, a.machineId);
  if (!opened) return insertAttempt(db, a);
  await db
    .updateTable('boot_attempts')
    .set({ run_id: a.runId, remote_addr: a.remoteAddr, platform: a.platform, arch: a.arch, boot_mac: a.bootMac, decision: a.decision })
    .where('id', '=', opened)
    .execute();
  return opened;
}

/**
 * An attempt for a run that starts in an installer already running (the console's install):
 * no boot, the same machine as the attempt of the run it follows (address, platform, MAC), so
 * that the new run's stages show in the trace as any run's do.
 */
export async function continueAttempt(db: Db, a: { machineId: string; fromRunId: string; runId: string; at: string; decision: string }): Promise<string> {
  const from = await db.selectFrom('boot_attempts').selectAll().where('machine_id', '=', a.machineId).where('run_id', '=', a.fromRunId).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  return insertAttempt(db, { machineId: a.machineId, runId: a.runId, at: a.at, remoteAddr: from?.remote_addr ?? null, platform: from?.platform ?? null, arch: from?.arch ?? null, bootMac: from?.boot_mac ?? null, decision: a.decision });
}

/** The decision of an attempt that so far holds only DHCP stages. */
export const DHCP_ONLY = 'dhcp-only';

/** The machine's newest attempt when it holds DHCP stages and no HTTP request yet. */
async function openDhcpAttempt(db: Db, machineId: string): Promise<string | null> {
  const newest = await db.selectFrom('boot_attempts').select(['id', 'decision']).where('machine_id', '=', machineId).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  return newest?.decision === DHCP_ONLY ? newest.id : null;
}

/**
 * The attempt a DHCP answer belongs to: the machine's open DHCP-only attempt (a PXE ROM's
 * exchange, then iPXE's), or a new one — a DHCP exchange after an HTTP request is a new boot.
 */
export async function dhcpAttempt(db: Db, a: { machineId: string; at: string; bootMac: string }): Promise<string> {
  const opened = await openDhcpAttempt(db, a.machineId);
  return opened ?? insertAttempt(db, { machineId: a.machineId, runId: null, at: a.at, remoteAddr: null, platform: null, arch: null, bootMac: a.bootMac, decision: DHCP_ONLY });
}

/** The attempt a later request belongs to: the newest one of the machine (for a run, of that run). */
export async function currentAttempt(db: Db, machineId: string, runId?: string | null): Promise<string | null> {
  let q = db.selectFrom('boot_attempts').select('id').where('machine_id', '=', machineId);
  if (runId) q = q.where('run_id', '=', runId);
  const row = await q.orderBy('seq', 'desc').limit(1).executeTakeFirst();
  return row?.id ?? null;
}

/** Records one stage and makes it the machine's `lastStage`. */
export async function recordStage(
  db: Db,
  s: { machineId: string; attemptId: string | null; runId: string | null; at: string; stage: string; detail?: Record<string, unknown> | null },
): Promise<void> {
  await recordStages(db, { machineId: s.machineId, attemptId: s.attemptId, runId: s.runId, at: s.at, stages: [{ at: s.at, stage: s.stage, detail: s.detail ?? null }] });
}

type Stage = { at: string; stage: string; detail?: Record<string, unknown> | null };

/**
 * Records several stages of one attempt in one insert, in their order, and sets with the same
 * update of the machine its `lastStage` (the last of them) and `also` (a boot request's other
 * columns): a boot request's two or three stages cost two statements rather than six.
 */
export async function recordStages(
  db: Db,
  s: { machineId: string; attemptId: string | null; runId: string | null; at: string; stages: Stage[]; also?: MachineChanges },
): Promise<void> {
  const last = s.stages.at(-1);
  if (!last) return;
  await db
    .insertInto('boot_trace')
    .values(s.stages.map((t) => ({ machine_id: s.machineId, attempt_id: s.attemptId, run_id: s.runId, at: t.at, stage: t.stage, detail: toJson(t.detail ?? null) })))
    .execute();
  await updateMachineRow(db, s.machineId, { ...s.also, last_stage: last.stage }, s.at);
}

/** The newest `limit` boot attempts of a machine, oldest first, each with its stages. */
export async function readTrace(db: Db, machineId: string, limit = 10): Promise<BootAttempt[]> {
  const attempts = await db
    .selectFrom('boot_attempts')
    .selectAll()
    .where('machine_id', '=', machineId)
    .orderBy('seq', 'desc')
    .limit(limit)
    .execute();
  if (attempts.length === 0) return [];
  const rows = await db
    .selectFrom('boot_trace')
    .selectAll()
    .where('attempt_id', 'in', attempts.map((a) => a.id))
    .orderBy('id')
    .execute();
  return attempts.reverse().map((a) => ({
    id: a.id,
    startedAt: a.started_at,
    runId: a.run_id,
    decision: a.decision,
    remoteAddr: a.remote_addr,
    platform: a.platform,
    arch: a.arch,
    bootMac: a.boot_mac,
    stages: rows
      .filter((r) => r.attempt_id === a.id)
      .map((r) => ({ id: Number(r.id), at: r.at, stage: r.stage, runId: r.run_id, detail: fromJson(r.detail, null) })),
  }));
}

/** Remembers a /boot.ipxe fetch until the machine-script request that follows it names its nonce. */
export async function rememberChain(db: Db, nonce: string, at: string, remoteAddr: string | null): Promise<void> {
  await db.insertInto('boot_chains').values({ nonce, at, remote_addr: remoteAddr }).execute();
}

/** Takes (and forgets) a chain fetch; null when unknown or already used. */
export async function takeChain(db: Db, nonce: string): Promise<{ at: string; remoteAddr: string | null } | null> {
  // One statement: the row deleted is the one read (SQLite ≥ 3.35 and PostgreSQL both return it).
  const row = await db.deleteFrom('boot_chains').where('nonce', '=', nonce).returning(['at', 'remote_addr']).executeTakeFirst();
  return row ? { at: row.at, remoteAddr: row.remote_addr } : null;
}

/** Forgets chain fetches no machine followed up on (firmware that gave up, scanners). */
export async function pruneChains(db: Db, olderThan: string): Promise<void> {
  await db.deleteFrom('boot_chains').where('at', '<', olderThan).execute();
}
