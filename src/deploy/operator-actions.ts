import type { Store } from '../store/database.js';
import { validation } from '../core/errors.js';
import type { Actor } from '../inventory/machine.js';
import type { InventoryService } from '../inventory/service.js';
import type { LifecycleEngine, TransitionResult } from '../lifecycle/engine.js';
import type { OperatorAction } from '../lifecycle/states.js';
import { getRun } from '../runs/runs.js';
import { DEFAULT_SCRIPT_TIMEOUT_SECONDS } from '../runs/scripts.js';
import type { DeployRequest, DeployService } from './service.js';

export type WipeMode = 'none' | 'quick' | 'full';

/** What an operator may send with a lifecycle action: a reason, how to wipe, or how to deploy. */
export interface ActionOptions extends DeployRequest {
  reason?: string;
  wipe?: WipeMode;
  /** inspect: the scripts to run on the machine instead of the library's. */
  scripts?: { name: string; content: string; timeoutSeconds?: number }[];
}

const DEPLOY_ACTIONS: readonly OperatorAction[] = ['deploy', 'redeploy', 'retry'];
const DEPLOY_FIELDS = ['image', 'imageUrl', 'method', 'sshKeys', 'rootDeviceHints', 'reuseRun', 'installer', 'os', 'kernelArgs', 'template'] as const;

/** Options that make no sense for the action are refused, naming the field, before anything is read. */
function checkOptions(action: OperatorAction, o: ActionOptions): void {
  for (const f of DEPLOY_FIELDS) {
    if (o[f] !== undefined && !DEPLOY_ACTIONS.includes(action)) throw validation(f, `only applies to deploy, redeploy and retry, not ${action}`);
  }
  if (o.scripts !== undefined) {
    if (action !== 'inspect') throw validation('scripts', `only apply to inspect, not ${action}`);
    const seen = new Set<string>();
    o.scripts.forEach((sc, i) => {
      if (seen.has(sc.name)) throw validation(`scripts[${i}].name`, `'${sc.name}' is given twice`);
      seen.add(sc.name);
    });
  }
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
  constructor(private readonly d: { store: Store; inventory: InventoryService; engine: LifecycleEngine; deploy: DeployService }) {}

  async perform(machineKey: string, action: OperatorAction, options: ActionOptions, actor: Actor): Promise<TransitionResult> {
    checkOptions(action, options);
    const m = await this.d.inventory.get(machineKey);
    const { reason, wipe, scripts, ...deployRequest } = options;
    if (action === 'deploy' || action === 'redeploy' || (action === 'retry' && m.state === 'deploy-failed')) {
      const r = await this.d.deploy.start(m.id, action, deployRequest, actor, reason ?? null);
      // A deploy that reuses the current run reports that run.
      return r.run || !r.machine.currentRunId ? r : { ...r, run: await getRun(this.d.store.db, r.machine.currentRunId) };
    }
    const params: Record<string, unknown> = {};
    if (wipe !== undefined) params.wipe = wipe;
    if (scripts !== undefined) params.scripts = scripts.map((sc) => ({ name: sc.name, content: sc.content, timeoutSeconds: sc.timeoutSeconds ?? DEFAULT_SCRIPT_TIMEOUT_SECONDS }));
    if (action === 'wipe' && params.wipe === undefined) params.wipe = 'quick';
    return this.d.engine.act(machineKey, action, {
      actor,
      reason: reason ?? null,
      params,
      ...(action === 'abort' ? { error: { code: 'aborted', message: reason ?? 'aborted by the operator' } } : {}),
    });
  }
}
