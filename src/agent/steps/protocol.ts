/**
 * The agent's reading of the run parameters the controller hands it in the hello answer
 * (src/protocol/agent.ts holds the protocol itself): a `DeployParams` for a deploy run, a
 * `WipeParams` for a wipe run. Each is checked before anything touches a disk, and a
 * StepError (params) names the first field that is wrong. Root device hints are checked
 * against the protocol's own schema, the one the API and profiles validate them with.
 */
import Value from 'typebox/value';
import { KERNEL_ARGS_PATTERN, ROOT_DEVICE_HINTS, RootDeviceHintsSchema, type RootDeviceHints } from '../../protocol/deploy.js';

const KERNEL_ARGS = new RegExp(KERNEL_ARGS_PATTERN);
import { checkDiskLayout, DiskLayoutSchema } from '../../protocol/disk-layout.js';
import { DeployParamsSchema, HoldParamsSchema, InspectParamsSchema, MulticastReceiveSchema, SHA256_PATTERN, TreeParamsSchema, type HoldParams, type TreeParams, WIPE_MODES, type DeployParams, type InspectParams, type WipeParams } from '../../protocol/agent.js';
import { StepError } from './errors.js';
import { ChunkIndexRefSchema, type ChunkIndexRef } from '../../protocol/chunk-index.js';

export type { RootDeviceHints } from '../../protocol/deploy.js';
export type { AgentNext, BootLocalAnswer, DeployParams, MulticastReceive, StepReport, StepReportAnswer, StepReportStatus, WipeParams } from '../../protocol/agent.js';
export { DEPLOY_STEPS, WIPE_STEPS, type DeployStepName, type StepName, type WipeStepName } from '../../protocol/runs.js';

const SHA256 = new RegExp(SHA256_PATTERN);

/** The deploy parameters of a hello answer, checked; a StepError (params) names the first problem. */
export function parseDeployParams(raw: unknown): DeployParams {
  const p = record(raw, 'params');
  const seedOf = () => {
    const seed = record(p['seed'], 'params.seed');
    return {
      userData: string(seed['userData'], 'params.seed.userData'),
      metaData: string(seed['metaData'], 'params.seed.metaData'),
      networkConfig: string(seed['networkConfig'], 'params.seed.networkConfig'),
    };
  };
  if (p['tree'] !== undefined && p['tree'] !== null) {
    if (p['image'] !== undefined && p['image'] !== null) throw bad('params.image', 'is given with params.tree; a deploy writes one or the other');
    const params: DeployParams = { tree: parseTreeParams(p['tree']), seed: seedOf(), ...configureOf(p) };
    if (p['kernelArgs'] !== undefined && p['kernelArgs'] !== null) params.kernelArgs = kernelArgsOf(p['kernelArgs']);
    return params;
  }
  const image = record(p['image'], 'params.image');
  const url = text(image['url'], 'params.image.url');
  const sha256 = text(image['sha256'], 'params.image.sha256');
  if (!SHA256.test(sha256)) throw bad('params.image.sha256', 'is not 64 hex digits');
  const sizeBytes = count(image['sizeBytes'], 'params.image.sizeBytes');
  if (sizeBytes === 0) throw bad('params.image.sizeBytes', 'is 0');
  if (image['format'] !== 'raw') throw bad('params.image.format', `is ${JSON.stringify(image['format'])}; this agent writes raw images only`);
  const params: DeployParams = {
    image: { url, sha256: sha256.toLowerCase(), sizeBytes, format: 'raw' },
    seed: seedOf(),
    ...configureOf(p),
  };
  if (image['index'] !== undefined && image['index'] !== null) {
    const problem = Value.Errors(ChunkIndexRefSchema, image['index'])[0];
    if (problem) throw bad(`params.image.index${problem.instancePath.replaceAll('/', '.')}`, problem.message);
    params.image!.index = image['index'] as ChunkIndexRef;
  }
  if (image['differential'] !== undefined && image['differential'] !== null) {
    if (typeof image['differential'] !== 'boolean') throw bad('params.image.differential', 'is not true or false');
    if (image['differential'] && !params.image!.index) throw bad('params.image.differential', 'needs params.image.index (the chunks to compare the disk with)');
    params.image!.differential = image['differential'];
  }
  if (p['rootDeviceHints'] !== undefined && p['rootDeviceHints'] !== null) params.rootDeviceHints = parseRootDeviceHints(p['rootDeviceHints']);
  if (p['kernelArgs'] !== undefined && p['kernelArgs'] !== null) params.kernelArgs = kernelArgsOf(p['kernelArgs']);
  if (p['multicast'] !== undefined && p['multicast'] !== null) {
    const problem = Value.Errors(MulticastReceiveSchema, p['multicast'])[0];
    if (problem) throw bad(`params.multicast${problem.instancePath.replaceAll('/', '.')}`, problem.message);
    const m = p['multicast'] as { transport?: string; uftp?: unknown };
    if ((m.transport === 'uftp') !== (m.uftp !== undefined)) throw bad('params.multicast.uftp', 'comes with transport uftp, and only with it');
    params.multicast = p['multicast'] as NonNullable<DeployParams['multicast']>;
  }
  return params;
}

/** A deploy's configure step: its scripts and the machine's variables, checked against the protocol's schemas. */
function configureOf(p: Record<string, unknown>): Pick<DeployParams, 'scripts' | 'variables'> {
  const out: Pick<DeployParams, 'scripts' | 'variables'> = {};
  for (const key of ['scripts', 'variables'] as const) {
    if (p[key] === undefined || p[key] === null) continue;
    const problem = Value.Errors(DeployParamsSchema.properties[key], p[key])[0];
    if (problem) throw bad(`params.${key}${problem.instancePath.replaceAll('/', '.')}`, problem.message);
    (out as Record<string, unknown>)[key] = p[key];
  }
  return out;
}

function kernelArgsOf(v: unknown): string {
  const kernelArgs = string(v, 'params.kernelArgs');
  if (!KERNEL_ARGS.test(kernelArgs)) throw bad('params.kernelArgs', 'holds a quote, \\, `, $, ;, |, <, > or a control or non-ASCII character');
  return kernelArgs;
}

/** A disk layout from elsewhere than the controller (a configure script's), checked as the controller checks one; `field` names it in errors. */
export function parseDiskLayout(raw: unknown, field: string): TreeParams['diskLayout'] {
  const problem = Value.Errors(DiskLayoutSchema, raw)[0];
  if (problem) throw bad(`${field}${problem.instancePath.replaceAll('/', '.')}`, problem.message);
  const layout = raw as TreeParams['diskLayout'];
  const rules = checkDiskLayout(layout, field);
  if (rules) throw bad(rules.field, rules.message);
  return layout;
}

/** A tree deploy's parameters, checked against the protocol's schema and the disk layout's rules. */
export function parseTreeParams(raw: unknown): TreeParams {
  const problem = Value.Errors(TreeParamsSchema, raw)[0];
  if (problem) throw bad(`params.tree${problem.instancePath.replaceAll('/', '.')}`, problem.message);
  const tree = raw as TreeParams;
  const layout = checkDiskLayout(tree.diskLayout, 'params.tree.diskLayout');
  if (layout) throw bad(layout.field, layout.message);
  return tree;
}

export function parseWipeParams(raw: unknown): WipeParams {
  const p = record(raw, 'params');
  const mode = WIPE_MODES.find((m) => m === p['mode']);
  if (!mode) throw bad('params.mode', `is ${JSON.stringify(p['mode'])}; expected ${WIPE_MODES.map((m) => JSON.stringify(m)).join(' or ')}`);
  return { mode };
}

/** An installer or rescue run's parameters (the keys to let in), checked against the protocol's schema. */
export function parseHoldParams(raw: unknown): HoldParams {
  const problem = Value.Errors(HoldParamsSchema, raw ?? {})[0];
  if (problem) throw bad(`params${problem.instancePath.replaceAll('/', '.')}`, problem.message);
  return raw as HoldParams;
}

/** An inspect run's parameters (its scripts and variables), checked against the protocol's schema. */
export function parseInspectParams(raw: unknown): InspectParams {
  const problem = Value.Errors(InspectParamsSchema, raw ?? {})[0];
  if (problem) throw bad(`params${problem.instancePath.replaceAll('/', '.')}`, problem.message);
  return (raw ?? {}) as InspectParams;
}

export function parseRootDeviceHints(raw: unknown): RootDeviceHints {
  const h = record(raw, 'params.rootDeviceHints');
  for (const key of Object.keys(h)) {
    const field = `params.rootDeviceHints.${key}`;
    const schema = (RootDeviceHintsSchema.properties as Record<string, unknown>)[key];
    if (!(ROOT_DEVICE_HINTS as string[]).includes(key) || !schema) throw bad(field, `is not a root device hint (known: ${ROOT_DEVICE_HINTS.join(', ')})`);
    const problem = Value.Errors(schema as Parameters<typeof Value.Errors>[0], h[key])[0];
    if (problem) throw bad(field, `is ${JSON.stringify(h[key])}: ${problem.message}`);
  }
  return h as RootDeviceHints;
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
