/**
 * How a run says what its machine boots. The boot service asks the planners that components
 * register (deploy registers one); the plan types live here, below both, so that the deploy
 * component can plan boots without importing the boot service.
 */
import type { Machine } from '../inventory/machine.js';
import type { Run } from './runs.js';

/** What to boot for a run: the installer (default), local disk, or something else a later component renders. */
export type BootPlan =
  | { kind: 'installer' }
  | { kind: 'local'; why: string }
  /** A script with no agent behind it (a distribution's installer): handing it out claims the run. */
  | { kind: 'script'; decision: string; render: (ctx: { baseUrl: string; attemptId: string }) => string };

/** Lets the deploy component choose what a machine boots during its run (e.g. local disk after the image is written). */
export type BootPlanner = (machine: Machine, run: Run) => Promise<BootPlan | null>;
