import type { Store } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { PlinthError, validation } from '../core/errors.js';
import { HOLD_RETURN_STATES, isHoldKind, type HoldKind, type HoldReturnState } from '../core/states.js';
import type { LifecycleEngine, MachineTransaction, TransitionResult } from '../lifecycle/engine.js';
import type { Actor, Machine } from '../inventory/machine.js';
import type { InventoryService } from '../inventory/service.js';
import { getRun, listRuns, setRunParams, updateStep, type Run } from '../runs/runs.js';
import type { RunPrincipal } from '../runs/run-tokens.js';
import { currentAttempt, recordStage } from '../runs/trace.js';
import type { HoldParams, SshReport } from '../protocol/agent.js';
import type { ForwardedPort } from '../providers/types.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { ApplianceService } from '../appliances/service.js';

/** Where a client on the controller's host reaches a machine's port through its platform's forward, if any. */
export type PortForwards = (m: Machine, guestPort: number) => Promise<ForwardedPort | null>;

/**
 * The forward the machine's appliance declares (the QEMU lab's user network forwards a host port
 * of 127.0.0.1 to the guest); null for appliances that forward nothing, or when it cannot say.
 */
export function applianceForwards(appliances: ApplianceService, registry: ProviderRegistry): PortForwards {
  return async (m, guestPort) => {
    const { applianceId, ref } = m.provider;
    if (!applianceId || !ref) return null;
    try {
      const { appliance, endpoint } = await appliances.endpoint(applianceId);
      const provider = registry.create(appliance.type, endpoint, { resilience: false });
      return (await provider.management.forwardedPort?.(ref, guestPort, { timeoutMs: 5000, log: { debug() {}, info() {}, warn() {} } })) ?? null;
    } catch {
      return null;
    }
  };
}

/** Where to go when leaving the installer: the installed OS, or wherever the machine came from. */
export const EXIT_TARGETS = ['deployed', 'previous'] as const;
export type ExitTarget = (typeof EXIT_TARGETS)[number];

/** What an installer or rescue run keeps in its parameters. */
export interface HoldRunParams {
  authorizedKeys: string[];
  /** The state the machine was in when the hold started, and goes back to on `previous`. */
  returnTo: HoldReturnState;
  /** The installer's SSH server, as its agent reported it. */
  ssh?: SshEndpoint;
  /** The client's idempotency key (Tateru's boot-installer `nonce`): the same one again is this run. */
  nonce?: string;
  /** The operator enabled the installer's console menu (`plinth machine console`): it may install an image (docs/console.md). */
  console?: true;
}

/** How to reach the held installer over SSH. */
export interface SshEndpoint {
  port: number;
  hostKeys: string[];
  /** Addresses the installer reported having. */
  addresses: string[];
  /** The address the controller saw the report come from. */
  seenFrom: string | null;
  reportedAt: string;
}

/** What `GET /api/v1/machines/{machine}/installer` answers. */
export interface InstallerAccess {
  machine: string;
  uuid: string | null;
  state: string;
  run: string;
  kind: HoldKind;
  user: 'root';
  address: string | null;
  port: number | null;
  hostKeys: string[];
  knownHosts: string[];
  reportedAt: string | null;
}

/** One `known_hosts` line: `host key` on port 22, `[host]:port key` elsewhere; the key's comment left out. */
export function knownHostsLine(address: string, port: number, hostKey: string): string {
  const [type, blob] = hostKey.split(' ');
  const host = port === 22 ? address : `[${address}]:${port}`;
  return `${host} ${type} ${blob}`;
}

const START_ACTION: Record<HoldKind, string> = { installer: 'boot-installer', rescue: 'rescue' };
const EXIT_ACTION: Record<HoldKind, string> = { installer: 'exit-installer', rescue: 'exit-rescue' };

/**
 * The installer held for work done from outside: `boot-installer` for automation that
 * installs the OS itself over SSH (Ansible, Tateru's flow), `rescue` for an operator's shell
 * on a machine whose disks are left alone. Both start a run holding the caller's public keys
 * (delivered to the installer in its agent's hello and nowhere else) and the state to return
 * to; the agent starts an SSH server and reports its port and host keys; leaving goes to the
 * installed OS (booted from disk) or back where the machine was.
 */
export class Holds {
  constructor(private readonly d: { store: Store; clock: Clock; engine: LifecycleEngine; inventory: InventoryService; forwards?: PortForwards }) {}

  /** Boots the installer (or rescue) with these public keys allowed in. */
  async start(machineKey: string, kind: HoldKind, keys: readonly string[] | undefined, actor: Actor, reason: string | null, opts: { nonce?: string; console?: boolean } = {}): Promise<TransitionResult> {
    const authorizedKeys = [...new Set((keys ?? []).map((k) => k.trim()))];
    if (opts.console && kind !== 'installer') throw validation('console', `only applies to boot-installer, not ${START_ACTION[kind]}`);
    // A console hold needs no key: its menu is on the machine's own console, and its SSH server starts only with keys.
    if (authorizedKeys.length === 0 && !opts.console) throw validation('sshKeys', `${START_ACTION[kind]} needs at least one public key to let in`);
    const m = await this.d.inventory.get(machineKey);
    const returnTo = (HOLD_RETURN_STATES as readonly string[]).includes(m.state) ? (m.state as HoldReturnState) : 'available';
    return this.d.engine.act(m.id, START_ACTION[kind], {
      actor,
      reason,
      // Checked again on the locked row: the return state is the state the transition leaves.
      guard: (cur) => cur.state === m.state,
      params: { authorizedKeys, returnTo, ...(opts.nonce !== undefined ? { nonce: opts.nonce } : {}), ...(opts.console ? { console: true as const } : {}) } satisfies HoldRunParams,
    });
  }

  /** Leaves the installer (or rescue): to the installed OS, or back where the machine came from. */
  async exit(machineKey: string, kind: HoldKind, to: ExitTarget | undefined, actor: Actor, reason: string | null, hostKeys?: readonly string[]): Promise<TransitionResult> {
    if (kind === 'rescue' && to === 'deployed') throw validation('to', 'exit-rescue always returns to the previous state');
    const m = await this.d.inventory.get(machineKey);
    const run = await this.holdRun(m, kind);
    const returnTo = (run?.params as Partial<HoldRunParams> | undefined)?.returnTo ?? 'available';
    const exitTo: HoldReturnState = to === 'deployed' ? 'deployed' : returnTo;
    return this.d.engine.act(m.id, EXIT_ACTION[kind], {
      actor,
      reason,
      params: { exitTo },
      guard: (cur) => cur.state === m.state,
      alsoInTransaction: async (trx, _m, t) => {
        const booting = t.to === 'installer-exiting';
        if (run?.status === 'running') {
          const at = iso(this.d.clock.now());
          await updateStep(trx, run.id, 'hold', 'succeeded', at);
          await updateStep(trx, run.id, 'exit', booting ? 'running' : 'succeeded', at, booting ? 'booting the installed OS from disk' : `back to ${t.to}`);
        }
        // What the automation installed: its host keys, for clients to pin; not an image a deploy wrote.
        if (!booting) return;
        const keys = hostKeys?.length ? [...new Set(hostKeys.map((k) => k.trim().split(/\s+/).slice(0, 2).join(' ')))] : null;
        return { deployed_image: null, deployed_host_keys: keys ? JSON.stringify(keys) : null };
      },
    });
  }

  /** The newest run of this kind on the machine started with this nonce, if any. */
  async runWithNonce(m: Machine, kind: HoldKind, nonce: string): Promise<Run | null> {
    const recent = await listRuns(this.d.store.db, m.id, { limit: 50 });
    return recent.find((r) => r.kind === kind && (r.params as Partial<HoldRunParams>).nonce === nonce) ?? null;
  }

  /** The machine's current installer or rescue run, else its latest one of that kind (a failed hold has none current). */
  private async holdRun(m: Machine, kind: HoldKind): Promise<Run | null> {
    if (m.currentRunId) {
      const run = await getRun(this.d.store.db, m.currentRunId);
      if (run.kind === kind) return run;
    }
    const recent = await listRuns(this.d.store.db, m.id, { limit: 20 });
    return recent.find((r) => r.kind === kind) ?? null;
  }

  /** The parameters the agent works from: the keys to let in. */
  agentParams(run: Run): HoldParams {
    const p = run.params as Partial<HoldRunParams>;
    if (p.console) return { authorizedKeys: p.authorizedKeys ?? [], console: true };
    if (!p.authorizedKeys?.length) throw new PlinthError('conflict', `run ${run.id} has no keys to let in`);
    return { authorizedKeys: p.authorizedKeys };
  }

  /** The installer's SSH server is up: kept with the run, so clients can find and pin it. */
  async sshReady(tx: MachineTransaction, p: RunPrincipal, report: SshReport, seenFrom: string | null): Promise<void> {
    const run = await getRun(tx.trx, p.runId);
    const at = iso(this.d.clock.now());
    const ssh: SshEndpoint = { port: report.port, hostKeys: report.hostKeys, addresses: report.addresses ?? [], seenFrom, reportedAt: at };
    await setRunParams(tx.trx, run.id, { ...run.params, ssh });
    await updateStep(tx.trx, run.id, 'ssh-server', 'succeeded', at, `listening on port ${report.port}`);
    await updateStep(tx.trx, run.id, 'hold', 'running', at);
    const attemptId = await currentAttempt(tx.trx, p.machineId, p.runId);
    await recordStage(tx.trx, { machineId: p.machineId, attemptId, runId: p.runId, at, stage: 'ssh-server', detail: { port: report.port, hostKeys: report.hostKeys.length } });
  }

  /**
   * How to reach a machine held in the installer or rescue over SSH: address, port, host keys
   * and the `known_hosts` lines that pin them. Address and port are null until the agent
   * reported its SSH server (poll until they are set).
   */
  async access(machineKey: string): Promise<InstallerAccess> {
    const m = await this.d.inventory.get(machineKey);
    const run = m.currentRunId ? await getRun(this.d.store.db, m.currentRunId) : null;
    if (!run || !isHoldKind(run.kind)) {
      throw new PlinthError('conflict', `machine ${m.name} is ${m.state}, not in the installer or rescue`, { details: { machine: m.name, state: m.state } });
    }
    const ssh = (run.params as Partial<HoldRunParams>).ssh ?? null;
    const reach = ssh ? await this.reach(m, ssh) : null;
    return {
      machine: m.name,
      uuid: m.identity.systemUuid,
      state: m.state,
      run: run.id,
      kind: run.kind,
      user: 'root',
      address: reach?.address ?? null,
      port: reach?.port ?? null,
      hostKeys: ssh?.hostKeys ?? [],
      knownHosts: reach && ssh ? ssh.hostKeys.map((k) => knownHostsLine(reach.address, reach.port, k)) : [],
      reportedAt: ssh?.reportedAt ?? null,
    };
  }

  /**
   * Where a client reaches the installer a machine is held in (null: not held, or its SSH
   * server has not reported yet), with the keys its run lets in.
   */
  async endpoint(m: Machine): Promise<{ address: string; port: number; authorizedKeys: string[] } | null> {
    if (!m.currentRunId) return null;
    const run = await getRun(this.d.store.db, m.currentRunId);
    if (!isHoldKind(run.kind)) return null;
    const p = run.params as Partial<HoldRunParams>;
    const reach = p.ssh ? await this.reach(m, p.ssh) : null;
    return reach ? { ...reach, authorizedKeys: p.authorizedKeys ?? [] } : null;
  }

  /**
   * Where a client reaches the installer: through the forward its platform declares for its SSH
   * port (a lab VM behind QEMU's user network: 127.0.0.1 and a host port), else the address it
   * reported (its first), else where its report came from.
   */
  private async reach(m: Machine, ssh: SshEndpoint): Promise<{ address: string; port: number } | null> {
    const forward = await this.d.forwards?.(m, ssh.port);
    if (forward) return forward;
    const address = ssh.addresses[0] ?? ssh.seenFrom;
    return address ? { address, port: ssh.port } : null;
  }
}
