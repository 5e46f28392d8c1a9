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
  lastError: LastError | null;
  identityConflicts: IdentityConflict[];
  currentRunId: string | null;
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
