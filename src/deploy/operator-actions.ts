import type { Store } from '../store/database.js';
import { validation } from '../core/errors.js';
import type { Actor } from '../inventory/machine.js';
import type { InventoryService } from '../inventory/service.js';
import type { LifecycleEngine, TransitionResult } from '../lifecycle/engine.js';
import type { OperatorAction } from '../lifecycle/states.js';
import { getRun } from '../runs/runs.js';
import { DEFAULT_SCRIPT_TIMEOUT_SECONDS } from '../runs/scripts.js';
import { healthParams, healthScript } from '../health/script.js';
import type { HealthParamsInput } from '../protocol/health.js';
import type { DeployRequest, DeployService } from './service.js';
import type { ExitTarget, Holds } from './holds.js';

export type WipeMode = 'none' | 'quick' | 'full';

/** What an operator may send with a lifecycle action: a reason, how to wipe, or how to deploy. */
export interface ActionOptions extends DeployRequest {
  reason?: string;
  wipe?: WipeMode;
  /** inspect: the scripts to run on the machine instead of the library's; deploys: the configure step's. */
  scripts?: { name: string; content: string; timeoutSeconds?: number }[];
  /** inspect: a health check (docs/health.md) instead of the library's scripts. */
  health?: HealthParamsInput;
  /** exit-installer: to the installed OS, or back to the state the machine was in. */
  to?: ExitTarget;
  /** exit-installer to deployed: the installed OS's SSH host keys. */
  hostKeys?: string[];
  /** boot-installer: show the console menu, which may install an image on this machine (docs/console.md). */
  console?: boolean;
}

const DEPLOY_ACTIONS: readonly OperatorAction[] = ['deploy', 'redeploy', 'retry'];
const DEPLOY_FIELDS = ['image', 'imageUrl', 'method', 'rootDeviceHints', 'reuseRun', 'installer', 'os', 'kernelArgs', 'template', 'multicast', 'differential', 'tree', 'diskLayout', 'onSuccess'] as const;
/** Actions that hold the machine in the installer with an SSH server for the given keys. */
const HOLD_ACTIONS: readonly OperatorAction[] = ['boot-installer', 'rescue'];

/** Options that make no sense for the action are refused, naming the field, before anything is read. */
function checkOptions(action: OperatorAction, o: ActionOptions): void {
  for (const f of DEPLOY_FIELDS) {
    if (o[f] !== undefined && !DEPLOY_ACTIONS.includes(action)) throw validation(f, `only applies to deploy, redeploy and retry, not ${action}`);
  }
  if (o.scripts !== undefined) {
    if (action !== 'inspect' && !DEPLOY_ACTIONS.includes(action)) throw validation('scripts', `only apply to inspect (tests) and deploy, redeploy and retry (the configure step), not ${action}`);
    const seen = new Set<string>();
    o.scripts.forEach((sc, i) => {
      if (seen.has(sc.name)) throw validation(`scripts[${i}].name`, `'${sc.name}' is given twice`);
      seen.add(sc.name);
    });
  }
  if (o.health !== undefined) {
    if (action !== 'inspect') throw validation('health', `only applies to inspect, not ${action}`);
    if (o.scripts !== undefined) throw validation('health', 'a health check runs its own script; send scripts in another inspect');
  }
  if (o.sshKeys !== undefined && !DEPLOY_ACTIONS.includes(action) && !HOLD_ACTIONS.includes(action)) {
    throw validation('sshKeys', `only applies to deploy, redeploy, retry, boot-installer and rescue, not ${action}`);
  }
  if (o.console !== undefined && action !== 'boot-installer') throw validation('console', `only applies to boot-installer, not ${action}`);
  if (o.to !== undefined && action !== 'exit-installer') throw validation('to', `only applies to exit-installer, not ${action}`);
  if (o.hostKeys !== undefined && (action !== 'exit-installer' || o.to !== 'deployed')) throw validation('hostKeys', 'only applies to exit-installer with to: deployed');
  if (o.wipe !== undefined) {
    if (action !== 'release' && action !== 'wipe') throw validation('wipe', `only applies to release and wipe, not ${action}`);
    if (action === 'wipe' && o.wipe === 'none') throw validation('wipe', 'a wipe must be quick or full');
  }
}

/**
 * The lifecycle actions an operator asks for, whatever the transport: which of them are
 * deploys (deploy, redeploy, and a retry of a failed deploy — those are prepared by the
 * DeployService), and what every other action carries to the engine (the wipe mode, the
 * reason an abort records as the run's error).
 */
export class OperatorActions {
  constructor(private readonly d: { store: Store; inventory: InventoryService; engine: LifecycleEngine; deploy: DeployService; holds: Holds }) {}

  async perform(machineKey: string, action: OperatorAction, options: ActionOptions, actor: Actor): Promise<TransitionResult> {
    checkOptions(action, options);
    const m = await this.d.inventory.get(machineKey);
    const { reason, wipe, scripts, to, health, console, ...deployRequest } = options;
    if (action === 'boot-installer') return this.d.holds.start(m.id, 'installer', options.sshKeys, actor, reason ?? null, console ? { console } : {});
    if (action === 'rescue') return this.d.holds.start(m.id, 'rescue', options.sshKeys, actor, reason ?? null);
    if (action === 'exit-installer') return this.d.holds.exit(m.id, 'installer', to, actor, reason ?? null, options.hostKeys);
    if (action === 'exit-rescue') return this.d.holds.exit(m.id, 'rescue', undefined, actor, reason ?? null);
    if (action === 'deploy' || action === 'redeploy' || (action === 'retry' && m.state === 'deploy-failed')) {
      const r = await this.d.deploy.start(m.id, action, { ...deployRequest, ...(scripts !== undefined ? { scripts } : {}) }, actor, reason ?? null);
      // A deploy that reuses the current run reports that run.
      return r.run || !r.machine.currentRunId ? r : { ...r, run: await getRun(this.d.store.db, r.machine.currentRunId) };
    }
    const params: Record<string, unknown> = {};
    if (wipe !== undefined) params.wipe = wipe;
    if (scripts !== undefined) params.scripts = scripts.map((sc) => ({ name: sc.name, content: sc.content, timeoutSeconds: sc.timeoutSeconds ?? DEFAULT_SCRIPT_TIMEOUT_SECONDS }));
    if (health !== undefined) {
      // The run remembers it is a health check: its figures go into the facts it reports.
      params.health = healthParams(health);
      params.scripts = [healthScript(params.health as ReturnType<typeof healthParams>)];
    }
    if (action === 'wipe' && params.wipe === undefined) params.wipe = 'quick';
    return this.d.engine.act(machineKey, action, {
      actor,
      reason: reason ?? null,
      params,
      ...(action === 'abort' ? { error: { code: 'aborted', message: reason ?? 'aborted by the operator' } } : {}),
    });
  }
}
