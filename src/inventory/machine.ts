import type { BootMethod } from '../core/boot-method.js';
import type { Facts } from '../core/facts.js';
import type { Identity, IdentityConflict } from './identity.js';

/** A machine as the rest of Plinth sees it (the API shape, camelCase). */
export interface LastError {
  /** What failed: power, boot-device, boot, agent, disk, image, template, timeout, aborted, … */
  code: string;
  /** The last boot-trace stage (or lifecycle state) reached. */
  stage: string;
  message: string;
  at: string;
}

export interface PowerInfo {
  state: 'on' | 'off' | 'unknown';
  readAt: string | null;
  /** How it was read: a provider type, `agent`, `operator`… */
  source: string | null;
  /** What the lifecycle expects (on while work runs, off after inspection…), or null. */
  expected: 'on' | 'off' | null;
  /** The last reading disagreed with the expectation. */
  drift: boolean;
}

/** What profile matching decided for a machine (docs/matching.md); null until it was matched. */
export interface MachineMatch {
  /** The profile it matched, or null when none did (see `error`). */
  profile: string | null;
  /** Its variables: the spec's, with the pool entry's fields when it holds one. */
  vars: Record<string, unknown>;
  poolEntry: { pool: string; id: string; position: number } | null;
  matchedAt: string | null;
  /** Why no profile was given (eDeploy's message), or null. */
  error: string | null;
}

export interface Machine {
  id: string;
  name: string;
  identity: Identity;
  facts: Facts | null;
  state: string;
  targetState: string | null;
  stateDeadline: string | null;
  stateEnteredAt: string;
  lastStage: string | null;
  power: PowerInfo;
  maintenance: boolean;
  maintenanceReason: string | null;
  protected: boolean;
  owner: string | null;
  allocatedAt: string | null;
  tags: Record<string, string>;
  provider: { applianceId: string | null; ref: string | null };
  /** How the lifecycle boots it into the installer; null: its appliance's (core/boot-method.ts). */
  bootMethod: BootMethod | null;
  lastError: LastError | null;
  identityConflicts: IdentityConflict[];
  currentRunId: string | null;
  match: MachineMatch | null;
  /** What a deployed machine runs and where to reach it. */
  /** Tree deploys: `role` and `version` (eDeploy's) the installed system runs; null otherwise. */
  deployment: { image: string | null; address: string | null; deployedAt: string | null; hostKeys: string[]; role: string | null; version: string | null };
  /** The fixed IPv4 address Plinth's DHCP server gives this machine's MACs (dhcp.mode full), or null. */
  bootAddress: string | null;
  createdAt: string;
  updatedAt: string;
  version: number;
}

/** Who did something, as recorded in event history. */
export interface Actor {
  kind: 'operator' | 'system' | 'agent';
  /** Token name for operators, component for the system, run id for agents. */
  name: string;
}

export const actorLabel = (a: Actor): string => `${a.kind}:${a.name}`;
export const SYSTEM_ACTOR: Actor = { kind: 'system', name: 'controller' };
