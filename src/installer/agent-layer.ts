import { copyFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PlinthError } from '../core/errors.js';
import { layerFileName, packCpio } from './cpio-archive.js';
import { publishEntry, verifiedEntry } from '../build/cache.js';
import { sha256File } from '../build/digest.js';
import { makeScratchDir, removeScratchDir } from '../build/scratch.js';
import { AGENT_PATH, CA_BUNDLE_PATH } from './init-script.js';
import type { AgentLayerRecord } from './manifest.js';

const AGENT_LAYER_RECORD = 'layer.json';

/**
 * The agent layer: a small cpio archive holding only the agent bundle, so that a new agent
 * re-packs this layer (well under a second) and leaves the large base layer untouched.
 */
export async function buildAgentLayer(ctx: {
  cacheDir: string;
  key: string;
  agentBundle: string;
  /** PEM certificates for the agent to trust (checked by the caller), or none. */
  caBundle?: string | null;
  inputs: AgentLayerRecord['inputs'];
  signal?: AbortSignal;
}): Promise<{ dir: string; record: AgentLayerRecord }> {
  const started = Date.now();
  const work = makeScratchDir(ctx.cacheDir, 'tmp-agent');
  try {
    const stage = join(work, 'root');
    const target = join(stage, AGENT_PATH);
    mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
    copyFileSync(ctx.agentBundle, target);
    // The cache key was computed from the bundle's hash: make sure that is what was copied.
    if ((await sha256File(target)) !== ctx.inputs.agentSha256) {
      throw new PlinthError('conflict', `the agent bundle ${ctx.agentBundle} changed during the build; build again`);
    }
    if (ctx.caBundle) writeFileSync(join(stage, CA_BUNDLE_PATH), ctx.caBundle, { mode: 0o644 });

    const out = join(work, 'out');
    mkdirSync(out);
    const file = layerFileName('agent', ctx.inputs.compression);
    const { uncompressedBytes } = await packCpio(stage, join(out, file), ctx.inputs.compression, ctx.signal);
    const record: AgentLayerRecord = {
      name: 'agent',
      key: ctx.key,
      file,
      bytes: statSync(join(out, file)).size,
      uncompressedBytes,
      sha256: await sha256File(join(out, file)),
      builtAt: new Date().toISOString(),
      buildMs: Date.now() - started,
      inputs: ctx.inputs,
    };
    const final = join(ctx.cacheDir, 'agent', ctx.key);
    await publishEntry(out, final, AGENT_LAYER_RECORD, record);
    return { dir: final, record };
  } finally {
    await removeScratchDir(work);
  }
}

/** Reads a cached agent layer; null unless its file is there and intact. */
export async function cachedAgentLayer(cacheDir: string, key: string): Promise<{ dir: string; record: AgentLayerRecord } | null> {
  const dir = join(cacheDir, 'agent', key);
  const record = await verifiedEntry<AgentLayerRecord>(dir, AGENT_LAYER_RECORD, (r) => [r]);
  return record ? { dir, record } : null;
}
