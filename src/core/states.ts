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
  'retired',
] as const;
export type State = (typeof STATES)[number];

/** States a machine passes through while work is under way; each carries a deadline. */
export const TRANSITIONAL = ['inspecting', 'inspect-wait', 'deploying', 'deploy-wait', 'wiping', 'wipe-wait'] as const;
export type TransitionalState = (typeof TRANSITIONAL)[number];
export const isTransitional = (s: string): s is TransitionalState => (TRANSITIONAL as readonly string[]).includes(s);

/** The work a run carries out on a machine; each kind has its transitional states. */
export type RunKind = 'inspect' | 'deploy' | 'wipe';
