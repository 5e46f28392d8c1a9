import { describeBlockDevice, assertNotInUse, probeSignatures, syncPartitionTable, type BlockDevice, type Partition } from './block-device.js';
import { asStepError, StepError } from './errors.js';
import { nodeExec, type Exec } from './exec.js';
import { ext4Bytes, growFilesystem, growRoot, type GrowRootResult } from './grow-root.js';
import type { DeployParams, StepName, StepReportStatus, WipeParams } from './protocol.js';
import { chooseRootDisk, type CandidateDisk } from './root-disk.js';
import { writeNoCloudSeed, writeNoCloudSeedOn, type SeedResult } from './seed.js';
import { formatBytes, formatRate } from './units.js';
import { eraseSignatures, wipeDisks, type DiskWipeResult } from './wipe.js';
import { writeImage, type WriteImageOptions, type WriteImageResult } from './write-image.js';
import { udpReceiverSource, type ImageChunkSource } from './multicast-receive.js';
import { uftpReceiver, type DiskReceiver } from './uftp-receive.js';
import type { MulticastReceive } from './protocol.js';
import { configureTarget, copyTree, installBootLoader, layoutAndMount, type BootLoaderResult, type TreeTarget } from './tree-deploy.js';
import type { TreeParams } from '../../protocol/agent.js';

/**
 * The partition `name` of `disk`, large enough for the image (a StepError naming the disk
 * otherwise): keep-partitions writes there and nowhere else.
 */
async function partitionOf(disk: BlockDevice, name: string, imageBytes: number, exec: Exec, log: (line: string) => void): Promise<Partition> {
  // The kernel's partitions made those of the table on the disk, as the image is written to one of them.
  const found = (await syncPartitionTable(disk, exec, log)).find((p) => p.name === name);
  if (!found) throw new StepError('disk', `${disk.name} has no partition ${name}`, { disk: disk.name, partition: name });
  if (found.sizeBytes < imageBytes) {
    throw new StepError('disk', `${name} (${formatBytes(found.sizeBytes)}, ${found.sizeBytes} bytes) is smaller than the image (${imageBytes} bytes)`, { disk: disk.name, partition: name, partitionBytes: found.sizeBytes, imageBytes });
  }
  return found;
}

/**
 * The end of a keep-partitions deploy, once the image is in its partition: the file system
 * grown to the partition (grow-root: the partition table is not touched) and the seed written
 * into that file system (configure), never into another partition.
 */
async function keepPartitionsEnd(into: Partition, params: DeployParams, deps: DeployDeps, exec: Exec, done: Pick<DeployOutcome, 'disk' | 'device' | 'write'>): Promise<DeployOutcome> {
  const filesystem = (await probeSignatures(into.path, exec))?.['TYPE'] ?? 'unknown';
  const grow = await step('grow-root', deps, async () => {
    const before = filesystem === 'ext4' ? await ext4Bytes(into.path, exec) : null;
    const after = await growFilesystem(into, filesystem, done.disk.name, { log: deps.log, exec });
    const result: GrowRootResult = {
      disk: done.disk.name,
      partition: into.path,
      partitionNumber: into.number,
      filesystem,
      isRoot: true,
      partitionBytes: { before: into.sizeBytes, after: into.sizeBytes },
      filesystemBytes: before !== null && after !== null ? { before, after } : null,
    };
    const grown = result.filesystemBytes ? `, ${formatBytes(result.filesystemBytes.before)} → ${formatBytes(result.filesystemBytes.after)}` : '';
    return { value: result, message: `${into.name} (${filesystem}) grown to its partition (${formatBytes(into.sizeBytes)})${grown}; the other partitions kept`, details: { ...result } };
  });
  const seed = await step('configure', deps, async () => {
    const result = await writeNoCloudSeedOn(into, filesystem, filesystem, params.seed, { log: deps.log, exec, kernelArgs: params.kernelArgs });
    return { value: result, message: `NoCloud seed in ${result.directory} on ${result.partition}`, details: { ...result } };
  });
  deps.log('deploy: every step succeeded; asking the controller to boot this machine from its disk');
  await deps.beforeReboot();
  return { ...done, grow, seed };
}

/**
 * The deploy and wipe runs as the agent performs them: steps in order, each reported
 * `running` then `succeeded` or `failed` (with its duration and, on failure, the error's
 * code), the first failure ending the run. See protocol.ts for the contract.
 */
export interface StepReportBody {
  message?: string;
  details?: Record<string, unknown>;
}

export interface StepRunnerDeps {
  reportStep(name: StepName, status: StepReportStatus, report?: StepReportBody): Promise<void>;
  log(line: string): void;
  /** The machine's disks as inspection finds them now. */
  inspectDisks(): Promise<CandidateDisk[]>;
  exec?: Exec;
  /** Where the disks' device nodes are. Default /dev. */
  devDir?: string;
}

export interface DeployDeps extends StepRunnerDeps {
  /** The controller's base URL: relative image URLs resolve against it. */
  controllerUrl: string;
  /** The run token; sent with the image request only when the image comes from the controller. */
  token: string | null;
  fetch?: typeof fetch;
  /** After the last step, before the reboot: the agent asks the controller to boot this machine from disk. */
  beforeReboot(): Promise<void>;
  /** Retry and buffer tuning for the download (tests make the pauses short). */
  download?: Pick<WriteImageOptions, 'backoffMs' | 'sleep' | 'idleTimeoutMs' | 'maxFruitlessAttempts' | 'bufferBytes'>;
  /** Told how the image write progresses (the agent passes it on in its heartbeats). */
  onProgress?: WriteImageOptions['onProgress'];
  /** How a run's udpcast session is received (default: udp-receiver on this machine). */
  multicastSource?: (session: MulticastReceive, log: (line: string) => void) => ImageChunkSource;
  /** How a run's uftp session is received (default: uftpd on this machine). */
  uftpReceiver?: (session: MulticastReceive, log: (line: string) => void) => DiskReceiver;
}

export interface DeployOutcome {
  disk: CandidateDisk;
  device: string;
  write: WriteImageResult;
  grow: GrowRootResult;
  seed: SeedResult;
}

export type WipeDeps = StepRunnerDeps;

export interface WipeOutcome {
  mode: WipeParams['mode'];
  disks: DiskWipeResult[];
}

interface StepDone<T> {
  value: T;
  message: string;
  details?: Record<string, unknown>;
}

/** Runs one step between its reports; its failure is reported, marked with the step, and rethrown. */
async function step<T>(name: StepName, deps: StepRunnerDeps, work: () => Promise<StepDone<T>>): Promise<T> {
  const started = performance.now();
  const durationMs = () => Math.round(performance.now() - started);
  await deps.reportStep(name, 'running');
  deps.log(`step ${name}: running`);
  let done: StepDone<T>;
  try {
    done = await work();
  } catch (e) {
    const error = asStepError(e, 'agent');
    error.step = name;
    deps.log(`step ${name}: failed (${error.code}): ${error.message}`);
    await deps
      .reportStep(name, 'failed', { message: error.message, details: { ...error.details, code: error.code, durationMs: durationMs() } })
      .catch((r: Error) => deps.log(`step ${name}: the failure could not be reported: ${r.message}`));
    throw error;
  }
  deps.log(`step ${name}: succeeded in ${(durationMs() / 1000).toFixed(1)} s: ${done.message}`);
  await deps.reportStep(name, 'succeeded', { message: done.message, details: { ...done.details, durationMs: durationMs() } });
  return done.value;
}

export async function runDeploySteps(params: DeployParams, deps: DeployDeps): Promise<DeployOutcome> {
  const exec = deps.exec ?? nodeExec();
  const devDir = deps.devDir ?? '/dev';
  const image = params.image;
  if (!image) throw new StepError('params', 'params.image is required (a deploy writes an image or a tree)', { field: 'params.image' });
  const source = imageSource(image.url, deps.controllerUrl, deps.token);

  const disk = await step('select-disk', deps, async () => {
    const disks = await deps.inspectDisks();
    const chosen = chooseRootDisk(disks, params.rootDeviceHints, image.sizeBytes);
    const by = params.rootDeviceHints && Object.keys(params.rootDeviceHints).length > 0 ? 'the root device hints' : 'the smallest disk the image fits on';
    return {
      value: chosen,
      message: `${chosen.name} (${formatBytes(chosen.sizeBytes)}): ${by}`,
      details: { disk: chosen.name, sizeBytes: chosen.sizeBytes, serial: chosen.serial, wwn: chosen.wwn, model: chosen.model, chosenBy: by, disks: disks.map((d) => d.name) },
    };
  });
  const device = `${devDir}/${disk.name}`;
  /** keep-partitions: the partition the image goes into; the disk's table and other partitions stay as they are. */
  let partition: Partition | null = null;

  const write = await step('write-image', deps, async () => {
    if (params.partition) partition = await partitionOf(await describeBlockDevice(device), params.partition, image.sizeBytes, exec, deps.log);
    // Signatures of the disk's previous life (a RAID superblock or LVM label near the end,
    // an old backup GPT) would survive the image and confuse blkid once the root grows over them.
    // For a partition, only that partition's: the others are not this deploy's.
    const target = partition ? await describeBlockDevice(partition.path) : await describeBlockDevice(device);
    await assertNotInUse(target);
    await eraseSignatures(target, exec);
    const result = await writeImage({
      url: source.url,
      token: source.token,
      ...(image.index ? { index: { ...imageSource(image.index.url, deps.controllerUrl, deps.token), sha256: image.index.sha256 }, differential: image.differential === true } : {}),
      sha256: image.sha256,
      sizeBytes: image.sizeBytes,
      device: target.path,
      log: deps.log,
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
      ...(deps.onProgress ? { onProgress: deps.onProgress } : {}),
      ...multicastReceiver(params, deps),
      ...deps.download,
    });
    const transport = params.multicast ? `, by ${result.transport} (multicast ${formatBytes(result.bytesReceived.multicast)}, HTTP ${formatBytes(result.bytesReceived.http)})` : '';
    const c = result.chunks;
    const chunked = c
      ? `: fetched ${formatBytes(c.fetchedBytes)}, zero-filled ${formatBytes(c.zeroFilledBytes)}${c.differential ? `, kept ${formatBytes(c.keptBytes)} already on the disk` : ''}, every chunk verified`
      : `${transport}, sha256 verified`;
    return {
      value: result,
      message: `${formatBytes(result.bytes)} in ${result.seconds.toFixed(1)} s (${formatRate(result.bytes, result.seconds)})${chunked}${result.resumedAt.length ? `, resumed ${result.resumedAt.length} time(s)` : ''}`,
      details: {
        device: target.path,
        bytes: result.bytes,
        seconds: result.seconds,
        bytesPerSecond: Math.round(result.bytesPerSecond),
        sha256: result.sha256,
        attempts: result.attempts,
        resumedAt: result.resumedAt,
        transport: result.transport,
        bytesReceived: result.bytesReceived,
        ...(c ? { chunks: c } : {}),
        ...(params.multicast ? { multicastSession: params.multicast.session, multicastTool: params.multicast.transport ?? 'udpcast' } : {}),
        ...(result.multicastFallback !== undefined ? { multicastFallback: result.multicastFallback } : {}),
      },
    };
  });

  const into = partition as Partition | null;
  if (into) return keepPartitionsEnd(into, params, deps, exec, { disk, device, write });

  const grow = await step('grow-root', deps, async () => {
    const result = await growRoot(device, { log: deps.log, exec });
    return {
      value: result,
      message: `${result.partition} (${result.filesystem}) ${formatBytes(result.partitionBytes.before)} → ${formatBytes(result.partitionBytes.after)}`,
      details: { ...result },
    };
  });

  const seed = await step('configure', deps, async () => {
    const result = await writeNoCloudSeed(device, params.seed, { log: deps.log, exec, kernelArgs: params.kernelArgs });
    return { value: result, message: `NoCloud seed in ${result.directory} on ${result.partition}`, details: { ...result } };
  });

  deps.log('deploy: every step succeeded; asking the controller to boot this machine from its disk');
  await deps.beforeReboot();
  return { disk, device, write, grow, seed };
}

/**
 * How the run's multicast session is received: udpcast streams into the writer; uftp writes
 * the disk first, checked against the image's chunk index (without one, HTTP alone).
 */
function multicastReceiver(params: DeployParams, deps: DeployDeps): Pick<WriteImageOptions, 'multicast' | 'diskReceiver'> {
  const m = params.multicast;
  if (!m) return {};
  const towards = new URL(deps.controllerUrl).hostname.replace(/^\[|\]$/g, '');
  if (m.transport === 'uftp') {
    if (!params.image?.index) return {};
    return { diskReceiver: (deps.uftpReceiver ?? ((p, log) => uftpReceiver(p, { log, towards })))(m, deps.log) };
  }
  return { multicast: (deps.multicastSource ?? ((p, log) => udpReceiverSource(p, { log, towards })))(m, deps.log) };
}

export interface TreeDeployOutcome {
  layout: TreeTarget['applied'];
  bootLoader: BootLoaderResult;
}

/**
 * A tree deploy: layout-disks, copy-tree, configure, boot-loader (protocol/runs.ts), the file
 * systems mounted from the first to the last and unmounted whatever happens; then the
 * controller is asked to boot the disk. What follows (ONSUCCESS) is the agent's to do.
 */
export async function runTreeDeploySteps(params: DeployParams & { tree: TreeParams }, deps: DeployDeps, layoutFromScript?: string): Promise<TreeDeployOutcome> {
  const exec = deps.exec ?? nodeExec();
  const tree = params.tree;
  const tarball = imageSource(tree.tarballUrl, deps.controllerUrl, null).url;
  const target = await step('layout-disks', deps, async () => {
    const t = await layoutAndMount(tree.diskLayout, await deps.inspectDisks(), { exec, log: deps.log, ...(deps.devDir ? { devDir: deps.devDir } : {}) });
    const arrays = t.applied.devices.filter((d) => d.path.includes('/md'));
    return {
      value: t,
      message: `${t.applied.disks.map((d) => d.name).join(', ')}: ${t.applied.devices.length} device(s)${arrays.length ? `, ${arrays.map((a) => `${a.path} (${a.id})`).join(', ')}` : ''}; / on ${t.applied.root.path}${layoutFromScript ? ` (the layout of script ${layoutFromScript})` : ''}`,
      details: { disks: t.applied.disks, devices: t.applied.devices, mdadm: t.applied.mdadmArrays, ...(layoutFromScript ? { layoutFromScript } : {}) },
    };
  });
  let bootLoader: BootLoaderResult;
  try {
    await step('copy-tree', deps, async () => {
      const started = performance.now();
      const r = await copyTree(tree, deps.controllerUrl, tarball, target.dir, exec, deps.log);
      const seconds = (performance.now() - started) / 1000;
      return { value: r, message: `${tree.role}-${tree.version} by ${r.via} in ${seconds.toFixed(1)} s${r.files !== null ? ` (${r.files} files)` : ''}`, details: { ...r, role: tree.role, version: tree.version } };
    });
    const configured = await step('configure', deps, async () => {
      const r = await configureTarget(target, tree, deps.controllerUrl, params.seed, params.kernelArgs, deps.log);
      return { value: r, message: `${r.files.join(', ')}, cloud-init seed`, details: { ...r } };
    });
    bootLoader = await step('boot-loader', deps, async () => {
      const r = await installBootLoader(target, tree.onSuccess, exec, deps.log, configured.treeNamedArrays);
      const initramfs = r.initramfsRebuilt ? `initramfs rebuilt (${r.initramfsRebuilt})` : "the tree's initramfs";
      return { value: r, message: `GRUB${r.bios.length ? ` on ${r.bios.join(', ')}` : ''}${r.efi ? ' (UEFI)' : ''}, ${initramfs}${r.kexec ? `; kexec loaded ${r.kexec.kernel}` : ''}`, details: { ...r } };
    });
  } finally {
    await target.unmount();
    await exec('sync', []).catch(() => undefined);
  }
  deps.log(`deploy: every step succeeded; asking the controller to boot this machine from its disk (then ONSUCCESS=${tree.onSuccess})`);
  await deps.beforeReboot();
  return { layout: target.applied, bootLoader };
}

export async function runWipeSteps(params: WipeParams, deps: WipeDeps): Promise<WipeOutcome> {
  const disks = await step('erase', deps, async () => {
    const found = await deps.inspectDisks();
    deps.log(`erase: ${params.mode} wipe of ${found.length} disk(s): ${found.map((d) => `${d.name} (${formatBytes(d.sizeBytes)})`).join(', ') || 'none'}`);
    const results = await wipeDisks({ disks: found, mode: params.mode, log: deps.log, ...(deps.exec ? { exec: deps.exec } : {}), ...(deps.devDir ? { devDir: deps.devDir } : {}) });
    return {
      value: results,
      message: `${params.mode} wipe: ${results.map((r) => `${r.disk} by ${r.method} in ${r.seconds.toFixed(1)} s`).join(', ')}`,
      details: { mode: params.mode, disks: results },
    };
  });
  return { mode: params.mode, disks };
}

/**
 * The image URL resolved against the controller's, and whether the run token goes with it:
 * only to the controller itself, never to another server the parameters might name.
 */
export function imageSource(url: string, controllerUrl: string, token: string | null): { url: string; token: string | null } {
  const base = new URL(controllerUrl.endsWith('/') ? controllerUrl : `${controllerUrl}/`);
  let resolved: URL;
  try {
    resolved = new URL(url, base);
  } catch {
    throw new StepError('params', `params.image.url '${url}' is not a URL`, { field: 'params.image.url' });
  }
  if (resolved.protocol !== 'http:' && resolved.protocol !== 'https:') {
    throw new StepError('params', `params.image.url '${url}' is not an http(s) URL`, { field: 'params.image.url' });
  }
  return { url: resolved.href, token: resolved.origin === base.origin ? token : null };
}
