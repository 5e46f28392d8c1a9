/**
 * The provision states a machine can be in, and the kinds of run that carry work on it: the
 * vocabulary inventory, runs and the lifecycle share. The transitions between states, and the
 * rules on who may ask for them, are the lifecycle's (lifecycle/states.ts).
 */
export const STATES = [
  'enrolled',
  'inspecting',
  'inspect-wait',
  'inspect-failed',
  'available',
  'deploying',
  'deploy-wait',
  'deploy-failed',
  'deployed',
  'wiping',
  'wipe-wait',
  'wipe-failed',
  'installer-booting',
  'installer',
  'installer-exiting',
  'installer-failed',
  'rescue-booting',
  'rescue',
  'rescue-failed',
  'retired',
] as const;
export type State = (typeof STATES)[number];

/**
 * States a machine passes through while work is under way; each carries a deadline. The
 * holds (`installer`, `rescue`) count among them: a machine waits there for someone else's
 * work, and not for ever.
 */
export const TRANSITIONAL = [
  'inspecting',
  'inspect-wait',
  'deploying',
  'deploy-wait',
  'wiping',
  'wipe-wait',
  'installer-booting',
  'installer',
  'installer-exiting',
  'rescue-booting',
  'rescue',
] as const;
export type TransitionalState = (typeof TRANSITIONAL)[number];
export const isTransitional = (s: string): s is TransitionalState => (TRANSITIONAL as readonly string[]).includes(s);

/**
 * The work a run carries out on a machine; each kind has its transitional states. `installer`
 * and `rescue` runs hold the machine in the installer for work done from outside (an Ansible
 * playbook, an operator's shell) and remember the state to return to.
 */
export const RUN_KINDS = ['inspect', 'deploy', 'wipe', 'installer', 'rescue'] as const;
export type RunKind = (typeof RUN_KINDS)[number];
/** Run kinds that hold the machine in the installer for work done over SSH. */
export const HOLD_KINDS = ['installer', 'rescue'] as const;
export type HoldKind = (typeof HOLD_KINDS)[number];
export const isHoldKind = (k: string): k is HoldKind => (HOLD_KINDS as readonly string[]).includes(k);
/** Where a held machine may return: a hold starts from one of these, and its run remembers which. */
export const HOLD_RETURN_STATES = ['available', 'deployed', 'enrolled'] as const;
export type HoldReturnState = (typeof HOLD_RETURN_STATES)[number];
