import type { Store } from '../store/database.js';
import type { Clock } from '../core/clock.js';
import { iso } from '../core/clock.js';
import { PlinthError, validation } from '../core/errors.js';
import type { InventoryService } from '../inventory/service.js';
import type { ImageStore } from '../images/store.js';
import { appendRunLog, getRun, setRunParams, updateStep, updateSteps } from '../runs/runs.js';
import { requireMachine } from '../inventory/machine-rows.js';
import { recordEvent } from '../inventory/events.js';
import { actorLabel } from '../inventory/machine.js';
import { claimRun, mintTicket, type RunPrincipal } from '../runs/run-tokens.js';
import { continueAttempt, recordStage } from '../runs/trace.js';
import type { ConsoleImagesAnswer, ConsoleInstall, ConsoleInstallAnswer, ConsoleLayout, ConsolePower } from '../protocol/agent.js';
import type { Image } from '../images/store.js';
import type { DeployRequest, DeployService } from './service.js';
import type { HoldRunParams } from './holds.js';
import type { MulticastSessions } from './multicast.js';

/** What a console deploy run keeps of the choices made on the machine's console. */
export interface ConsoleChoices {
  disk: string;
  layout: ConsoleLayout;
  /** keep-partitions: the partition the image went into. */
  partition?: string;
  multicast: boolean;
  /** The installer hold whose console made them. */
  holdRun: string;
}

const deviceName = (name: string) => name.replace(/^\/dev\//, '');

/**
 * The layout checked against what the image holds: whole-disk takes a whole-disk image;
 * keep-partitions a partition image, into a partition of the chosen disk at least as large as
 * the image (its size as the installer sees it). The partition, for keep-partitions.
 */
function checkLayout(choice: ConsoleInstall, image: Image, disk: string): string | null {
  if (choice.layout === 'whole-disk') {
    if (choice.partition !== undefined) throw validation('partition', 'only applies to keep-partitions');
    if (choice.partitionSizeBytes !== undefined) throw validation('partitionSizeBytes', 'only applies to keep-partitions');
    if (image.layout === 'partition') {
      throw new PlinthError('unsupported', `layout: image ${image.name} is a partition image (one file system, no partition table); whole-disk would leave ${disk} without one: choose keep-partitions and a partition`, {
        details: { field: 'layout', image: image.name },
      });
    }
    return null;
  }
  // Keep-partitions keeps the disk's table and other partitions: an image with a table of its own would replace them all.
  if (image.layout !== 'partition') {
    throw new PlinthError('unsupported', `layout: keep-partitions writes an image into one partition and keeps the others; image ${image.name} is a whole-disk image (its own partition table), so it would replace them all: choose whole-disk`, {
      details: { field: 'layout', image: image.name },
    });
  }
  if (choice.partition === undefined) throw validation('partition', 'keep-partitions needs the partition the image goes into');
  const partition = deviceName(choice.partition);
  // The kernel's names of a disk's partitions: sda1, vda2; nvme0n1p3, mmcblk0p1, loop0p2.
  if (!new RegExp(`^${disk}p?[1-9][0-9]{0,2}$`).test(partition)) throw validation('partition', `${choice.partition} is not a partition of ${disk}`);
  if (choice.partitionSizeBytes === undefined) throw validation('partitionSizeBytes', 'keep-partitions needs the size of the partition the image goes into');
  if (choice.partitionSizeBytes < image.sizeBytes) {
    throw new PlinthError('unsupported', `partition: ${partition} (${choice.partitionSizeBytes} bytes) is smaller than image ${image.name} (${image.sizeBytes} bytes)`, {
      details: { field: 'partition', partition, image: image.name },
    });
  }
  return partition;
}

/**
 * The installer's console menu as the controller sees it (docs/console.md). The menu runs on
 * the machine's console, which anyone standing at the machine (or on its serial line) can
 * type into, and it reaches the controller over the provisioning network: both untrusted.
 * So an install is allowed only
 * - with the run ticket of the machine's current installer hold (its scoped credential: the
 *   install is of that machine and no other, and no request names a machine),
 * - of a hold an operator started with the console on (`plinth machine console`),
 * - of a machine that was `available` when the hold started (a deploy is allowed there; a
 *   deployed machine's disk is not given to whoever stands at it),
 * - of an image of the store onto a disk its inspection found, big enough to hold it;
 * and it becomes a deploy run like any other (prepared, stepped, traced), whose ticket the
 * answer hands over already claimed, so no boot request can obtain it.
 */
export class ConsoleInstalls {
  constructor(
    private readonly d: {
      store: Store;
      clock: Clock;
      inventory: InventoryService;
      images: ImageStore;
      deploy: DeployService;
      multicast?: MulticastSessions;
      ticketKey: Buffer;
    },
  ) {}

  /** The hold behind a console request, checked: its console is on and its machine was available. */
  private async hold(p: RunPrincipal) {
    if (p.kind !== 'installer') throw new PlinthError('forbidden', `run ${p.runId} is a ${p.kind} run; only an installer hold with the console on may install`, { details: { run: p.runId } });
    const run = await getRun(this.d.store.db, p.runId);
    const params = run.params as Partial<HoldRunParams>;
    const m = await this.d.inventory.get(p.machineId);
    if (!params.console) {
      throw new PlinthError('forbidden', `the console is not enabled for machine ${m.name}: an operator enables it with 'plinth machine console ${m.name}'`, { details: { machine: m.name, run: run.id } });
    }
    if (m.currentRunId !== run.id || m.state !== 'installer') {
      throw new PlinthError('conflict', `machine ${m.name} is ${m.state}, not held in the installer by run ${run.id}`, { details: { machine: m.name, state: m.state } });
    }
    if (params.returnTo !== 'available') {
      throw new PlinthError('forbidden', `machine ${m.name} was ${params.returnTo ?? 'unknown'} when its console was enabled; the console installs only on a machine that was available`, {
        details: { machine: m.name, returnTo: params.returnTo ?? null },
      });
    }
    return { run, m };
  }

  /**
   * Reboot or power off, chosen on the console: recorded before the agent does it (an event
   * `console-reboot` / `console-poweroff` on the machine, a line in the run's log), so the
   * machine's history says why it went down. Taken from a console hold (any: a hold of a
   * deployed machine may reboot it too) or from the deploy run a console started (its last
   * screen); the state does not change (the hold stays until its deadline or the operator).
   */
  async power(p: RunPrincipal, action: ConsolePower['action']): Promise<Record<string, never>> {
    const run = await getRun(this.d.store.db, p.runId);
    if (!run.params.console) {
      const m = await this.d.inventory.get(p.machineId);
      throw new PlinthError('forbidden', `run ${run.id} of machine ${m.name} is not a console's: only a console reports its power choices`, { details: { run: run.id } });
    }
    await this.d.store.transaction(async (trx) => {
      const m = await requireMachine(trx, this.d.store.dialect, p.machineId, { lock: true });
      if (m.currentRunId !== run.id) throw new PlinthError('conflict', `run ${run.id} is no longer machine ${m.name}'s current run`, { details: { machine: m.name, state: m.state } });
      const at = iso(this.d.clock.now());
      const what = action === 'reboot' ? 'reboot' : 'power off';
      const reason = `${what}, chosen on the machine's console`;
      await recordEvent(trx, { machineId: m.id, at, actor: actorLabel({ kind: 'agent', name: `run:${run.id}` }), action: `console-${action}`, fromState: m.state, toState: m.state, reason, details: { run: run.id } });
      await appendRunLog(trx, run.id, [{ at, stream: 'console', line: `console: ${reason}; the installer does it now` }]);
    });
    return {};
  }

  /** The images the console may install, each with the multicast session waiting for receivers of it, if any. */
  async images(p: RunPrincipal): Promise<ConsoleImagesAnswer> {
    await this.hold(p);
    const waiting = (this.d.multicast?.list() ?? []).filter((s) => s.state === 'waiting');
    const images = (await this.d.images.list()).filter((i) => i.kind === 'disk');
    return {
      images: images.map((i) => {
        const s = waiting.find((w) => w.sha256 === i.sha256);
        return {
          name: i.name,
          sha256: i.sha256,
          sizeBytes: i.sizeBytes,
          createdAt: i.createdAt,
          wholeDisk: i.layout !== 'partition',
          multicast: s ? { session: s.id, receivers: s.receivers, minReceivers: s.minReceivers } : null,
        };
      }),
    };
  }

  /** Installs what the console chose: a deploy run of this machine, whose ticket the answer carries. */
  async install(p: RunPrincipal, choice: ConsoleInstall): Promise<ConsoleInstallAnswer> {
    const { run: holdRun, m } = await this.hold(p);
    const image = await this.d.images.find(choice.image);
    if (!image || image.kind !== 'disk') throw validation('image', `no disk image '${choice.image}' in the image store`);
    const diskName = deviceName(choice.disk);
    const disks = m.facts?.disks ?? [];
    const disk = disks.find((d) => deviceName(d.name) === diskName);
    if (!disk) throw validation('disk', `machine ${m.name} has no disk '${choice.disk}' in its inspection (${disks.map((d) => d.name).join(', ') || 'none'})`);
    if (disk.sizeBytes < image.sizeBytes) throw validation('disk', `${disk.name} (${disk.sizeBytes} bytes) is smaller than image ${image.name} (${image.sizeBytes} bytes)`);
    const partition = checkLayout(choice, image, diskName);
    const req: DeployRequest = { image: image.name, rootDeviceHints: { name: diskName } };
    if (choice.multicast) {
      const session = (this.d.multicast?.list() ?? []).find((s) => s.state === 'waiting' && s.sha256 === image.sha256);
      if (!session) throw new PlinthError('conflict', `no multicast session of image ${image.name} is waiting for receivers; install over HTTP instead`, { details: { field: 'multicast', image: image.name } });
      // The session's own settings: joining matches them (DeployService → MulticastSessions.join).
      req.multicast = {
        transport: session.transport,
        rate: String(session.rateBitsPerSecond),
        minReceivers: session.minReceivers,
        maxWaitSeconds: session.maxWaitSeconds,
        ...(session.transport === 'uftp' ? { ttl: session.ttl } : {}),
      };
    }
    const token = { value: '' };
    const choices: ConsoleChoices = { disk: diskName, layout: choice.layout, ...(partition ? { partition } : {}), multicast: choice.multicast === true, holdRun: holdRun.id };
    const target = partition ?? diskName;
    const r = await this.d.deploy.start(m.id, 'console-install', req, { kind: 'agent', name: `run:${holdRun.id}` }, `console: ${image.name} on ${target}`, async (trx, runId) => {
      const at = iso(this.d.clock.now());
      // The run's ticket, claimed now in the transition's transaction: a boot request never gets one for it.
      token.value = mintTicket(this.d.ticketKey, runId, 0);
      if (!(await claimRun(trx, runId, 0, token.value))) throw new PlinthError('conflict', `run ${runId} was claimed before the console could`);
      const run = await getRun(trx, runId);
      await setRunParams(trx, runId, { ...run.params, console: choices, ...(partition ? { partition } : {}) });
      await updateSteps(trx, runId, ['power-on', 'boot-installer'], 'succeeded', at, `already in the installer (console of run ${holdRun.id})`);
      // The trace goes on in an attempt of the new run (no boot: the installer is up).
      const attemptId = await continueAttempt(trx, { machineId: m.id, fromRunId: holdRun.id, runId, at, decision: 'console-install' });
      await recordStage(trx, { machineId: m.id, attemptId, runId, at, stage: 'console-install', detail: { holdRun: holdRun.id, image: image.name, disk: diskName, layout: choice.layout, ...(partition ? { partition } : {}), multicast: choices.multicast } });
      await updateStep(trx, holdRun.id, 'hold', 'succeeded', at);
      await updateStep(trx, holdRun.id, 'exit', 'succeeded', at, `console install: ${image.name} on ${target}, deploy run ${runId}`);
    });
    if (r.machine.state !== 'deploying' || !r.run || !token.value) {
      const why = r.machine.lastError?.message ?? `machine ${m.name} is ${r.machine.state}`;
      throw new PlinthError('conflict', `the deploy failed its preparation: ${why}`, { details: { machine: m.name, state: r.machine.state } });
    }
    return { run: r.run.id, token: token.value };
  }
}
