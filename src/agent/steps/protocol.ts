/**
 * What the controller and the agent say to each other about deploy and wipe runs.
 *
 * The controller hands the run's parameters in the hello answer (`run.params`): a
 * `DeployParams` for a deploy run, a `WipeParams` for a wipe run. The agent then reports
 * each step and ends as the controller answers:
 *
 *   POST /agent/v1/steps/{name}  StepReport            → StepReportAnswer
 *   POST /agent/v1/boot-local    {}                     → BootLocalAnswer   (deploy only, after the last step)
 *   POST /agent/v1/fail          { code, message, stage } → { next }         (any failure; stage = the step)
 *
 * Deploy steps, in order: select-disk, write-image, grow-root, configure; then boot-local and
 * the reboot. Wipe steps: erase; then the power-off. Every step is reported `running` when it
 * starts and `succeeded` or `failed` when it ends, with its duration in `details.durationMs`.
 */
import { StepError } from './errors.js';

/**
 * Ironic-style root device hints: every hint given must match exactly (strings after
 * trimming; wwn without regard to case). `name` may be `/dev/sda` or `sda`.
 */
export interface RootDeviceHints {
  name?: string;
  /** Exact size in bytes. */
  sizeBytes?: number;
  /** Exact size in GiB, rounded down as Ironic's `size` hint is. */
  sizeGiB?: number;
  /** At least this many bytes. */
  minSizeBytes?: number;
  serial?: string;
  wwn?: string;
  model?: string;
  vendor?: string;
}

export interface DeployParams {
  image: {
    /** Absolute, or relative to the controller URL the agent was booted with. */
    url: string;
    /** Hex SHA-256 of the raw image. */
    sha256: string;
    sizeBytes: number;
    format: 'raw';
  };
  rootDeviceHints?: RootDeviceHints;
  /** cloud-init NoCloud seed: the documents as they are to be written (text, not objects). */
  seed: { userData: string; metaData: string; networkConfig: string };
}

export interface WipeParams {
  mode: 'quick' | 'full';
}

export const DEPLOY_STEPS = ['select-disk', 'write-image', 'grow-root', 'configure'] as const;
export const WIPE_STEPS = ['erase'] as const;
export type DeployStepName = (typeof DEPLOY_STEPS)[number];
export type WipeStepName = (typeof WIPE_STEPS)[number];
export type StepName = DeployStepName | WipeStepName;

export type StepReportStatus = 'running' | 'succeeded' | 'failed';

/** Body of POST /agent/v1/steps/{name}. */
export interface StepReport {
  status: StepReportStatus;
  /** One line for people: what was done, or why it failed. */
  message?: string;
  /** Machine-readable: durationMs, what the step chose or measured; on failure `code`. */
  details?: Record<string, unknown>;
}

/** What the agent does once its run is over; the controller decides. */
export type AgentNext = 'poweroff' | 'reboot' | 'wait';

/**
 * Answer to a step report. `next` is present only when that report ended the run's last
 * step (a wipe's `erase`): the run is over and the agent ends as told. Absent: carry on
 * (and after a wipe's last step, power off).
 */
export interface StepReportAnswer {
  next?: AgentNext;
}

/**
 * Answer to POST /agent/v1/boot-local: the controller has made the machine boot from its
 * disk from now on. Absent `next`: reboot.
 */
export interface BootLocalAnswer {
  next?: AgentNext;
}

const SHA256 = /^[0-9a-f]{64}$/i;

/** The deploy parameters of a hello answer, checked; a StepError (params) names the first problem. */
export function parseDeployParams(raw: unknown): DeployParams {
  const p = record(raw, 'params');
  const image = record(p['image'], 'params.image');
  const url = text(image['url'], 'params.image.url');
  const sha256 = text(image['sha256'], 'params.image.sha256');
  if (!SHA256.test(sha256)) throw bad('params.image.sha256', 'is not 64 hex digits');
  const sizeBytes = count(image['sizeBytes'], 'params.image.sizeBytes');
  if (sizeBytes === 0) throw bad('params.image.sizeBytes', 'is 0');
  if (image['format'] !== 'raw') throw bad('params.image.format', `is ${JSON.stringify(image['format'])}; this agent writes raw images only`);
  const seed = record(p['seed'], 'params.seed');
  const params: DeployParams = {
    image: { url, sha256: sha256.toLowerCase(), sizeBytes, format: 'raw' },
    seed: {
      userData: string(seed['userData'], 'params.seed.userData'),
      metaData: string(seed['metaData'], 'params.seed.metaData'),
      networkConfig: string(seed['networkConfig'], 'params.seed.networkConfig'),
    },
  };
  if (p['rootDeviceHints'] !== undefined && p['rootDeviceHints'] !== null) params.rootDeviceHints = parseRootDeviceHints(p['rootDeviceHints']);
  return params;
}

export function parseWipeParams(raw: unknown): WipeParams {
  const p = record(raw, 'params');
  if (p['mode'] !== 'quick' && p['mode'] !== 'full') throw bad('params.mode', `is ${JSON.stringify(p['mode'])}; expected "quick" or "full"`);
  return { mode: p['mode'] };
}

const HINT_TEXT = ['name', 'serial', 'wwn', 'model', 'vendor'] as const;
const HINT_NUMBER = ['sizeBytes', 'sizeGiB', 'minSizeBytes'] as const;

export function parseRootDeviceHints(raw: unknown): RootDeviceHints {
  const h = record(raw, 'params.rootDeviceHints');
  const hints: RootDeviceHints = {};
  for (const key of Object.keys(h)) {
    const field = `params.rootDeviceHints.${key}`;
    if ((HINT_TEXT as readonly string[]).includes(key)) hints[key as (typeof HINT_TEXT)[number]] = text(h[key], field);
    else if ((HINT_NUMBER as readonly string[]).includes(key)) hints[key as (typeof HINT_NUMBER)[number]] = count(h[key], field);
    else throw bad(field, `is not a root device hint (known: ${[...HINT_TEXT, ...HINT_NUMBER].join(', ')})`);
  }
  return hints;
}

function bad(field: string, problem: string): StepError {
  return new StepError('params', `${field} ${problem}`, { field });
}

function record(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(field, 'is not an object');
  return v as Record<string, unknown>;
}

function string(v: unknown, field: string): string {
  if (typeof v !== 'string') throw bad(field, 'is not a string');
  return v;
}

function text(v: unknown, field: string): string {
  const s = string(v, field);
  if (s.trim() === '') throw bad(field, 'is empty');
  return s;
}

function count(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(field, 'is not a whole number of 0 or more');
  return v;
}
