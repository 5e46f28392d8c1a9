/**
 * The kinds of run a machine goes through and their steps, in order. The controller plans
 * every step when it creates a run; the agent reports the ones it does (DEPLOY_STEPS,
 * WIPE_STEPS) by name, and the controller records the others itself.
 */
import type { RunKind } from '../core/states.js';

export type { RunKind };

/** Steps the agent runs and reports (POST /agent/v1/steps/{name}), per run kind. */
export const DEPLOY_STEPS = ['select-disk', 'write-image', 'grow-root', 'configure'] as const;
/**
 * A tree deploy's agent steps: the disks laid out (partitions, arrays, volumes, file systems),
 * the tree copied, the installed system configured (fstab, mdadm.conf, eDeploy's conf, the
 * cloud-init seed), its boot loader installed. A configure script, when a deploy has one,
 * runs before layout-disks.
 */
export const TREE_DEPLOY_STEPS = ['layout-disks', 'copy-tree', 'configure', 'boot-loader'] as const;
export const WIPE_STEPS = ['erase'] as const;
export type DeployStepName = (typeof DEPLOY_STEPS)[number] | (typeof TREE_DEPLOY_STEPS)[number];
export type WipeStepName = (typeof WIPE_STEPS)[number];
export type StepName = DeployStepName | WipeStepName;

/** Steps that are over once the agent says hello: it was powered on and booted to say it. */
export const STEPS_DONE_AT_HELLO = ['power-on', 'boot-installer', 'agent-hello'] as const;

/** Every step of a run of each kind, the agent's among them. */
export const PLANNED_STEPS: Record<RunKind, readonly string[]> = {
  inspect: [...STEPS_DONE_AT_HELLO, 'report-facts', 'match-profile'],
  deploy: ['prepare', ...STEPS_DONE_AT_HELLO, ...DEPLOY_STEPS, 'reboot', 'first-boot'],
  wipe: [...STEPS_DONE_AT_HELLO, ...WIPE_STEPS, 'power-off'],
  // Held in the installer: the SSH server started, the hold, and the way out (to the disk or powered off).
  installer: [...STEPS_DONE_AT_HELLO, 'ssh-server', 'hold', 'exit'],
  rescue: [...STEPS_DONE_AT_HELLO, 'ssh-server', 'hold', 'exit'],
};

/** The steps of a run as planned when it is created: a deploy's depend on its method. */
export function plannedSteps(kind: RunKind, params: Record<string, unknown>): readonly string[] {
  if (kind !== 'deploy') return PLANNED_STEPS[kind];
  // The configure step's scripts run after the hello, before any disk step.
  const scripts = ((params['configureScripts'] as { name: string }[] | undefined) ?? []).map((s) => `script-${s.name}`);
  const disk = params['method'] === 'tree' ? TREE_DEPLOY_STEPS : DEPLOY_STEPS;
  return ['prepare', ...STEPS_DONE_AT_HELLO, ...scripts, ...disk, 'reboot', 'first-boot'];
}
