import type { Db, Store } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { PlinthError, validation } from '../core/errors.js';
import { redactSecrets } from '../core/redact.js';
import { openHostToken } from '../auth/host-tokens.js';
import { requireMachine, updateMachineRow } from '../inventory/machine-rows.js';
import { recordEvent } from '../inventory/events.js';
import type { Machine } from '../inventory/machine.js';
import type { HostDesiredAnswer, HostVersionReport } from '../protocol/host.js';
import type { TreeStore } from './store.js';

/**
 * What hosts installed from a tree tell the controller (protocol/host.ts): the role and version
 * they run after every `edeploy upgrade`, and what a rolling upgrade wants them at.
 *
 * A host authenticates with its host credential (auth/host-tokens.ts), which is accepted only
 * while its machine is `deployed` by the very deploy run the credential was made for: a
 * released or redeployed machine's old credential is dead, and a credential never reaches
 * another machine (its machine id is signed; nothing in a report can name another).
 */
export interface HostPrincipal {
  machineId: string;
  runId: string;
}

/** A rolling upgrade's side of reports (trees/rolls.ts), called in the report's transaction. */
export interface RollHook {
  /**
   * The version a running roll wants the machine at, or null: the answer to its host's poll,
   * whose first one the roll records (`at`; a machine's deadline names a poll that never came).
   */
  answerPoll(db: Db, machineId: string, at: string): Promise<{ roll: string; version: string } | null>;
  /** A report arrived from a machine (its row locked): advance the roll it is in, if any. */
  onReport(trx: Db, machine: Machine, report: HostVersionReport, at: string): Promise<void>;
}

export interface HostVersionsDeps {
  store: Store;
  clock: Clock;
  /** The key host credentials are signed with (SecretBox.deriveKey(HOST_TOKEN_PURPOSE)). */
  key: Buffer;
  trees: Pick<TreeStore, 'get'>;
  rolls?: RollHook;
}

export class HostVersions {
  constructor(private readonly d: HostVersionsDeps) {}

  /** The machine a credential speaks for, or null (not a credential, or its deployment is over). */
  async authenticate(token: string): Promise<HostPrincipal | null> {
    const opened = openHostToken(this.d.key, token);
    if (!opened) return null;
    const db = this.d.store.db;
    const machine = await db.selectFrom('machines').select(['state']).where('id', '=', opened.machineId).executeTakeFirst();
    if (machine?.state !== 'deployed') return null;
    const latest = await db
      .selectFrom('runs')
      .select(['id', 'status'])
      .where('machine_id', '=', opened.machineId)
      .where('kind', '=', 'deploy')
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return latest?.id === opened.runId && latest.status === 'succeeded' ? opened : null;
  }

  async desired(p: HostPrincipal): Promise<HostDesiredAnswer> {
    const m = await requireMachine(this.d.store.db, this.d.store.dialect, p.machineId);
    const { role, version } = treeOf(m);
    const want = (await this.d.rolls?.answerPoll(this.d.store.db, m.id, iso(this.d.clock.now()))) ?? null;
    return { role, version, desired: want && want.version !== version ? want.version : null, roll: want?.roll ?? null };
  }

  /**
   * Records what the host runs now. The role must be the one the machine was installed with,
   * the versions stored trees of it (a host may send anything; nothing is written when a field
   * is refused). One transaction with the machine row locked: the version, the event, and the
   * roll's advance commit together. A report after the roll gave up on the machine (its
   * deadline passed, trees/rolls.ts) is recorded all the same: the roll stays as it ended.
   */
  async report(p: HostPrincipal, r: HostVersionReport): Promise<{ machine: string; role: string; version: string }> {
    const at = iso(this.d.clock.now());
    return this.d.store.transaction(async (trx) => {
      const m = await requireMachine(trx, this.d.store.dialect, p.machineId, { lock: true });
      if (m.state !== 'deployed') throw new PlinthError('conflict', `machine ${m.name} is ${m.state}, not deployed: its host credential is no longer valid`);
      const { role, version: before } = treeOf(m);
      if (r.role !== role) throw validation('role', `machine ${m.name} was installed with role '${role}', not '${r.role}'`);
      for (const field of ['version', 'from', 'target'] as const) {
        const v = r[field];
        if (v === undefined) continue;
        try {
          this.d.trees.get(role, v);
        } catch (e) {
          if (e instanceof PlinthError && e.code === 'not_found') throw validation(field, `'${v}' is not a stored version of role ${role}`);
          throw e;
        }
      }
      if (r.result === 'failed' && r.target === undefined) throw validation('target', 'a failed upgrade names the version it was going to');
      if (r.version !== before) await updateMachineRow(trx, m.id, { deployed_version: r.version }, at);
      const message = r.message === undefined ? null : redactSecrets(r.message).replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, ' ').trim();
      await recordEvent(trx, {
        machineId: m.id,
        at,
        actor: `host:${m.name}`,
        action: 'version-reported',
        fromState: m.state,
        toState: m.state,
        reason: r.result === 'failed' ? `upgrade to ${r.target} failed${message ? `: ${message}` : ''}` : r.result === 'upgraded' ? `upgraded from ${r.from ?? before} to ${r.version}` : null,
        details: { role, version: r.version, previous: before, result: r.result, ...(r.from ? { from: r.from } : {}), ...(r.target ? { target: r.target } : {}), ...(r.rebootNeeded !== undefined ? { rebootNeeded: r.rebootNeeded } : {}), ...(message ? { message } : {}) },
      });
      await this.d.rolls?.onReport(trx, { ...m, deployment: { ...m.deployment, version: r.version } }, r, at);
      return { machine: m.name, role, version: r.version };
    });
  }
}

/** The tree a deployed machine runs; a conflict for machines not installed from a tree. */
function treeOf(m: Machine): { role: string; version: string } {
  if (!m.deployment.role || !m.deployment.version) throw new PlinthError('conflict', `machine ${m.name} was not installed from a tree: it has no role and version to report`);
  return { role: m.deployment.role, version: m.deployment.version };
}
