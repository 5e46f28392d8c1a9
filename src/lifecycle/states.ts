/**
 * The provision-state machine of DESIGN.md, declared as one table. Every change of a
 * machine's provision state is exactly one row of TRANSITIONS; anything else is refused
 * with a 409 that names the current state and the actions allowed from it.
 */
import type { HoldReturnState, RunKind, State, TransitionalState } from '../core/states.js';

/** Where a transitional state goes when its work fails or its deadline passes. */
export const FAILED_STATE: Record<TransitionalState, State> = {
  inspecting: 'inspect-failed',
  'inspect-wait': 'inspect-failed',
  deploying: 'deploy-failed',
  'deploy-wait': 'deploy-failed',
  wiping: 'wipe-failed',
  'wipe-wait': 'wipe-failed',
  'installer-booting': 'installer-failed',
  installer: 'installer-failed',
  'installer-exiting': 'installer-failed',
  'rescue-booting': 'rescue-failed',
  rescue: 'rescue-failed',
};

/** Where a transitional state is headed when its work succeeds (the machine's `target`). */
export const TARGET_STATE: Record<TransitionalState, State> = {
  inspecting: 'available',
  'inspect-wait': 'available',
  deploying: 'deployed',
  'deploy-wait': 'deployed',
  wiping: 'available',
  'wipe-wait': 'available',
  'installer-booting': 'installer',
  installer: 'installer',
  'installer-exiting': 'deployed',
  'rescue-booting': 'rescue',
  rescue: 'rescue',
};

export const OPERATOR_ACTIONS = [
  'inspect',
  'deploy',
  'redeploy',
  'release',
  'wipe',
  'retire',
  'unretire',
  'retry',
  'abort',
  'boot-installer',
  'exit-installer',
  'rescue',
  'exit-rescue',
] as const;
export type OperatorAction = (typeof OPERATOR_ACTIONS)[number];

/** Every action: the operator's, then those of the controller and the installer. */
export const ACTIONS = [...OPERATOR_ACTIONS, 'console-boot', 'console-install', 'installer-started', 'inspect-done', 'deploy-done', 'wipe-done', 'exit-done', 'fail', 'timeout'] as const;
export type Action = (typeof ACTIONS)[number];

/** Who may ask for a transition. `system` is the controller itself (sweeper, boot service, matching). */
export type ActorKind = 'operator' | 'system' | 'agent';

export interface Transition {
  action: Action;
  from: State;
  to: State;
  /** Who may trigger it. Automatic (non-operator) transitions never touch a machine in maintenance. */
  by: readonly ActorKind[];
  /** Refused on protected machines. */
  destructive?: boolean;
  /** Starts a run of this kind. */
  run?: RunKind;
  /** Chooses between rows with the same action and source state. */
  when?: (params: TransitionParams) => boolean;
  /** Why this row exists. */
  why: string;
}

export interface TransitionParams {
  wipe?: 'none' | 'quick' | 'full';
  /** Leaving the installer or rescue: the state the machine goes back to (resolved from `previous` by the caller). */
  exitTo?: HoldReturnState;
}

const toDeployed = (p: TransitionParams) => p.exitTo === 'deployed';
const toAvailable = (p: TransitionParams) => p.exitTo === 'available';
const toEnrolled = (p: TransitionParams) => p.exitTo === 'enrolled';

const OP = ['operator'] as const;
const OP_OR_SYSTEM = ['operator', 'system'] as const;
const SYSTEM = ['system'] as const;
const INSTALLER = ['system', 'agent'] as const;

export const TRANSITIONS: readonly Transition[] = [
  // --- inspection
  { action: 'inspect', from: 'enrolled', to: 'inspecting', by: OP_OR_SYSTEM, run: 'inspect', why: 'first inspection of a new machine; the boot service starts it on its own for machines that network-boot unannounced' },
  { action: 'inspect', from: 'available', to: 'inspecting', by: OP, run: 'inspect', why: 're-inspection after hardware changes' },
  { action: 'installer-started', from: 'inspecting', to: 'inspect-wait', by: INSTALLER, why: 'the installer booted and its agent said hello; now waiting for facts' },
  { action: 'inspect-done', from: 'inspect-wait', to: 'available', by: INSTALLER, why: 'facts received, identity resolved, profile matched' },
  { action: 'fail', from: 'inspecting', to: 'inspect-failed', by: INSTALLER, why: 'powering on or booting the installer failed' },
  { action: 'fail', from: 'inspect-wait', to: 'inspect-failed', by: INSTALLER, why: 'the agent reported an inspection error' },
  { action: 'timeout', from: 'inspecting', to: 'inspect-failed', by: SYSTEM, why: 'the agent never said hello before the deadline' },
  { action: 'timeout', from: 'inspect-wait', to: 'inspect-failed', by: SYSTEM, why: 'no facts before the deadline' },
  { action: 'abort', from: 'inspecting', to: 'inspect-failed', by: OP, why: 'the operator stops an inspection that is under way' },
  { action: 'abort', from: 'inspect-wait', to: 'inspect-failed', by: OP, why: 'the operator stops an inspection that is under way' },
  { action: 'retry', from: 'inspect-failed', to: 'inspecting', by: OP_OR_SYSTEM, run: 'inspect', why: 'try the inspection again' },
  { action: 'abort', from: 'inspect-failed', to: 'enrolled', by: OP, why: 'give up; the machine stays known but uninspected' },

  // --- deployment
  { action: 'deploy', from: 'available', to: 'deploying', by: OP, run: 'deploy', why: 'install an OS on an inspected machine' },
  { action: 'redeploy', from: 'deployed', to: 'deploying', by: OP, destructive: true, run: 'deploy', why: 'reinstall a running machine (its disk is overwritten)' },
  { action: 'installer-started', from: 'deploying', to: 'deploy-wait', by: INSTALLER, why: 'the installer booted; deploy steps are running' },
  { action: 'deploy-done', from: 'deploy-wait', to: 'deployed', by: INSTALLER, why: 'the installed OS reported in on its first boot' },
  { action: 'fail', from: 'deploying', to: 'deploy-failed', by: INSTALLER, why: 'rendering, power or boot failed before the installer ran' },
  { action: 'fail', from: 'deploy-wait', to: 'deploy-failed', by: INSTALLER, why: 'a deploy step failed' },
  { action: 'timeout', from: 'deploying', to: 'deploy-failed', by: SYSTEM, why: 'the installer never started before the deadline' },
  { action: 'timeout', from: 'deploy-wait', to: 'deploy-failed', by: SYSTEM, why: 'the deploy or the first boot did not finish before the deadline' },
  { action: 'abort', from: 'deploying', to: 'deploy-failed', by: OP, why: 'the operator stops a deploy that is under way' },
  { action: 'abort', from: 'deploy-wait', to: 'deploy-failed', by: OP, why: 'the operator stops a deploy that is under way' },
  { action: 'retry', from: 'deploy-failed', to: 'deploying', by: OP, run: 'deploy', why: 'try the deploy again with the same parameters' },
  { action: 'abort', from: 'deploy-failed', to: 'available', by: OP, why: 'give up the deploy; the next deploy overwrites the disk anyway' },

  // --- release and wipe
  { action: 'release', from: 'deployed', to: 'wiping', by: OP, destructive: true, run: 'wipe', when: (p) => p.wipe !== 'none', why: 'take the machine back and erase its disks' },
  { action: 'release', from: 'deployed', to: 'available', by: OP, destructive: true, when: (p) => p.wipe === 'none', why: 'take the machine back without erasing (wipe: none)' },
  { action: 'wipe', from: 'available', to: 'wiping', by: OP, destructive: true, run: 'wipe', why: 'erase the disks of an idle machine' },
  { action: 'wipe', from: 'enrolled', to: 'wiping', by: OP, destructive: true, run: 'wipe', why: 'erase the disks of a machine before its first inspection' },
  { action: 'installer-started', from: 'wiping', to: 'wipe-wait', by: INSTALLER, why: 'the installer booted; erasing' },
  { action: 'wipe-done', from: 'wipe-wait', to: 'available', by: INSTALLER, why: 'every disk erased' },
  { action: 'fail', from: 'wiping', to: 'wipe-failed', by: INSTALLER, why: 'power or boot failed before the installer ran' },
  { action: 'fail', from: 'wipe-wait', to: 'wipe-failed', by: INSTALLER, why: 'erasing a disk failed' },
  { action: 'timeout', from: 'wiping', to: 'wipe-failed', by: SYSTEM, why: 'the installer never started before the deadline' },
  { action: 'timeout', from: 'wipe-wait', to: 'wipe-failed', by: SYSTEM, why: 'erasing did not finish before the deadline' },
  { action: 'abort', from: 'wiping', to: 'wipe-failed', by: OP, why: 'the operator stops a wipe that is under way' },
  { action: 'abort', from: 'wipe-wait', to: 'wipe-failed', by: OP, why: 'the operator stops a wipe that is under way' },
  { action: 'retry', from: 'wipe-failed', to: 'wiping', by: OP, run: 'wipe', why: 'try erasing again' },
  { action: 'abort', from: 'wipe-failed', to: 'enrolled', by: OP, why: 'give up the wipe; the machine must be inspected (and wiped) before it is handed out again' },

  // --- the installer held for external automation (an Ansible playbook installs the OS over SSH)
  { action: 'boot-installer', from: 'enrolled', to: 'installer-booting', by: OP, run: 'installer', why: 'Tateru\'s flow: an uninspected machine boots the installer for automation that installs the OS itself' },
  { action: 'boot-installer', from: 'available', to: 'installer-booting', by: OP, run: 'installer', why: 'boot the installer with an SSH server for automation that installs the OS itself' },
  { action: 'boot-installer', from: 'deployed', to: 'installer-booting', by: OP, destructive: true, run: 'installer', why: 'reinstall a running machine from outside (the automation may overwrite its disk)' },
  { action: 'installer-started', from: 'installer-booting', to: 'installer', by: INSTALLER, why: 'the installer booted and its agent said hello; held there until the automation is done' },
  { action: 'fail', from: 'installer-booting', to: 'installer-failed', by: INSTALLER, why: 'powering on, booting the installer or starting its SSH server failed' },
  { action: 'fail', from: 'installer', to: 'installer-failed', by: INSTALLER, why: 'the installer reported an error while held' },
  { action: 'fail', from: 'installer-exiting', to: 'installer-failed', by: INSTALLER, why: 'switching the machine to its disk failed' },
  { action: 'timeout', from: 'installer-booting', to: 'installer-failed', by: SYSTEM, why: 'the agent never said hello before the deadline' },
  { action: 'timeout', from: 'installer', to: 'installer-failed', by: SYSTEM, why: 'the automation did not exit the installer before the hold ran out' },
  { action: 'timeout', from: 'installer-exiting', to: 'installer-failed', by: SYSTEM, why: 'the machine did not come up from its disk before the deadline' },
  { action: 'abort', from: 'installer-booting', to: 'installer-failed', by: OP, why: 'the operator stops a boot into the installer' },
  { action: 'abort', from: 'installer', to: 'installer-failed', by: OP, why: 'the operator ends the hold without saying where the machine goes (exit-installer says it)' },
  { action: 'abort', from: 'installer-exiting', to: 'installer-failed', by: OP, why: 'the operator stops waiting for the installed OS' },
  { action: 'exit-installer', from: 'installer', to: 'installer-exiting', by: OP, when: toDeployed, why: 'the automation installed an OS: boot it from disk' },
  { action: 'exit-installer', from: 'installer', to: 'available', by: OP, when: toAvailable, why: 'back to available; nothing installed is kept in use' },
  { action: 'exit-installer', from: 'installer-failed', to: 'installer-exiting', by: OP, when: toDeployed, why: 'the OS is installed even though the hold failed: boot it from disk' },
  { action: 'exit-installer', from: 'installer-failed', to: 'available', by: OP, when: toAvailable, why: 'give up; the machine is handed out again (the next deploy overwrites its disk)' },
  { action: 'exit-installer', from: 'installer', to: 'enrolled', by: OP, when: toEnrolled, why: 'back to enrolled: the machine came uninspected and is still to be inspected' },
  { action: 'exit-installer', from: 'installer-failed', to: 'enrolled', by: OP, when: toEnrolled, why: 'give up; the uninspected machine is still to be inspected' },
  // The installer's console menu (docs/console.md): a hold the operator started with the console on, of a machine that was available.
  // console.installWithoutOrders: the boot service holds an available machine that booted the installer with no orders at its console.
  { action: 'console-boot', from: 'available', to: 'installer-booting', by: SYSTEM, run: 'installer', why: "an available machine booted the installer with no orders and the site lets its console install (console.installWithoutOrders); it is booting already, so nothing is powered" },
  { action: 'console-install', from: 'installer', to: 'deploying', by: ['agent'], run: 'deploy', why: "the console menu installs the image chosen on the machine's console; its installer is already running, so nothing is powered or booted" },
  { action: 'exit-done', from: 'installer-exiting', to: 'deployed', by: SYSTEM, why: 'the machine was switched to its disk and reset into the installed OS' },

  // --- rescue: the installer with an SSH server, the disks left alone
  { action: 'rescue', from: 'available', to: 'rescue-booting', by: OP, run: 'rescue', why: 'boot the installer to look at or repair the disks by hand' },
  { action: 'rescue', from: 'deployed', to: 'rescue-booting', by: OP, run: 'rescue', why: 'boot the installer to repair an installed OS that does not come up' },
  { action: 'installer-started', from: 'rescue-booting', to: 'rescue', by: INSTALLER, why: 'the rescue system booted; held there until the operator exits' },
  { action: 'fail', from: 'rescue-booting', to: 'rescue-failed', by: INSTALLER, why: 'powering on, booting the installer or starting its SSH server failed' },
  { action: 'fail', from: 'rescue', to: 'rescue-failed', by: INSTALLER, why: 'the rescue system reported an error' },
  { action: 'timeout', from: 'rescue-booting', to: 'rescue-failed', by: SYSTEM, why: 'the agent never said hello before the deadline' },
  { action: 'timeout', from: 'rescue', to: 'rescue-failed', by: SYSTEM, why: 'the rescue hold ran out' },
  { action: 'abort', from: 'rescue-booting', to: 'rescue-failed', by: OP, why: 'the operator stops a boot into rescue' },
  { action: 'abort', from: 'rescue', to: 'rescue-failed', by: OP, why: 'the operator ends the rescue without saying where the machine goes (exit-rescue says it)' },
  { action: 'exit-rescue', from: 'rescue', to: 'deployed', by: OP, when: toDeployed, why: 'back to the installed OS, its disk untouched' },
  { action: 'exit-rescue', from: 'rescue', to: 'available', by: OP, when: toAvailable, why: 'back to available, powered off' },
  { action: 'exit-rescue', from: 'rescue-failed', to: 'deployed', by: OP, when: toDeployed, why: 'back to the installed OS after a failed rescue' },
  { action: 'exit-rescue', from: 'rescue-failed', to: 'available', by: OP, when: toAvailable, why: 'back to available after a failed rescue' },

  // --- retirement
  { action: 'retire', from: 'enrolled', to: 'retired', by: OP, destructive: true, why: 'keep the record, never boot it again' },
  { action: 'retire', from: 'available', to: 'retired', by: OP, destructive: true, why: 'keep the record, never boot it again' },
  { action: 'retire', from: 'inspect-failed', to: 'retired', by: OP, destructive: true, why: 'a machine that cannot be inspected is taken out of service' },
  { action: 'retire', from: 'deploy-failed', to: 'retired', by: OP, destructive: true, why: 'a machine that cannot be deployed is taken out of service' },
  { action: 'retire', from: 'wipe-failed', to: 'retired', by: OP, destructive: true, why: 'a machine whose disks cannot be erased is taken out of service' },
  { action: 'retire', from: 'installer-failed', to: 'retired', by: OP, destructive: true, why: 'a machine that cannot be installed from outside is taken out of service' },
  { action: 'retire', from: 'rescue-failed', to: 'retired', by: OP, destructive: true, why: 'a machine that cannot be rescued is taken out of service' },
  { action: 'unretire', from: 'retired', to: 'enrolled', by: OP, why: 'back into service; it is inspected again before use' },
];

/** The rows for `action` from `state`, in table order. */
export const transitionsFrom = (state: string, action: string): Transition[] =>
  TRANSITIONS.filter((t) => t.from === state && t.action === action);

/** Operator actions possible from a state (for 409 messages and the UI). */
export function allowedActions(state: string, actor: ActorKind = 'operator'): string[] {
  return [...new Set(TRANSITIONS.filter((t) => t.from === state && t.by.includes(actor)).map((t) => t.action))];
}

/** Chooses the row for an action, or returns null when the action is not possible in that state. */
export function findTransition(state: string, action: string, params: TransitionParams = {}): Transition | null {
  return transitionsFrom(state, action).find((t) => !t.when || t.when(params)) ?? null;
}
