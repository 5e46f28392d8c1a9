/**
 * A real QEMU VM behind the Redfish test service, as a BMC drives its host: `Reset` starts and
 * stops the VM, the one-time boot override picks the device it boots first, and virtual media
 * is a real CD drive. On `InsertMedia` the "BMC" fetches the image (as a BMC does, from its own
 * network: `reach` maps the URL the controller gave, e.g. the guests' 10.0.2.2, to where the
 * BMC reaches it) and, at power-on, puts it in the drive over QMP (`blockdev-change-medium` on
 * an ide-cd) before the guest runs; `EjectMedia` empties the drive (QMP `eject`) of a running VM.
 * When the guest powers itself off, the system the service describes reads Off.
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Vm, type VmSpec } from '../../../src/lab/vm.js';
import { TEST_QEMU_LAUNCHER } from '../qemu-processes.js';
import type { PowerChangeDetail, RedfishPeer, RedfishPeerOptions } from './redfish-server.js';

export interface RedfishVmOptions {
  /** The VM; its CD drive is added here (`cdrom0`, no medium). */
  spec: () => VmSpec;
  runDir: string;
  /** Where fetched images are kept. */
  mediaDir: string;
  /** The URL as the BMC fetches it (default: as given). */
  reach?: (url: string) => string;
  /** How QEMU is started (default TEST_QEMU_LAUNCHER; e.g. inside a network namespace for a tap). */
  launcher?: string[];
}

export interface RedfishVm {
  /** Hooks to pass to startRedfishPeer. */
  hooks: Pick<RedfishPeerOptions, 'onPowerChange' | 'onVirtualMedia'>;
  /** The peer whose system the VM is (its PowerState follows the guest's own power-off). */
  bind(peer: RedfishPeer): void;
  /** What happened, in order: `fetched URL`, `attached PATH`, `power On Cd`, `ejected`… */
  readonly log: string[];
  /** Wall-clock times (ms) the guest was let run after each power-on. */
  readonly poweredOnAt: number[];
  vm(): Vm | null;
  stop(): Promise<void>;
}

const CD = 'cdrom0';

export function redfishVm(o: RedfishVmOptions): RedfishVm {
  let peer: RedfishPeer | null = null;
  let vm: Vm | null = null;
  /** The image in the virtual CD: its fetch, then the local file. */
  let media: Promise<string> | null = null;
  let queue: Promise<void> = Promise.resolve();
  const log: string[] = [];
  const poweredOnAt: number[] = [];
  let fetched = 0;

  const qmp = async (v: Vm, command: string, args?: Record<string, unknown>) => {
    // QEMU opens its QMP socket while it starts: retry the connection briefly.
    for (let i = 0; ; i++) {
      try {
        return await v.qmp(command, args);
      } catch (e) {
        if (i >= 50 || !/ENOENT|ECONNREFUSED/.test(String(e))) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };

  const stopVm = async () => {
    const v = vm;
    vm = null;
    await v?.stop();
  };

  const powerOn = async (detail: PowerChangeDetail) => {
    await stopVm();
    const spec = o.spec();
    const cdFirst = detail.bootTarget === 'Cd';
    const v = new Vm(
      {
        ...spec,
        extraArgs: [...(spec.extraArgs ?? []), '-S', '-drive', `if=none,id=cd0,media=cdrom,readonly=on`, '-device', `ide-cd,drive=cd0,id=${CD}${cdFirst ? ',bootindex=0' : ''}`],
      },
      { dir: o.runDir, launcher: o.launcher ?? TEST_QEMU_LAUNCHER },
    );
    vm = v;
    await v.start();
    if (media) {
      const path = await media;
      await qmp(v, 'blockdev-change-medium', { id: CD, filename: path, format: 'raw', 'read-only-mode': 'read-only' });
      log.push(`attached ${path}`);
    }
    await qmp(v, 'cont');
    poweredOnAt.push(Date.now());
    log.push(`power On ${detail.bootTarget}`);
    void v.waitForExit(60 * 60_000).then(
      () => {
        if (vm === v && peer) (peer.system() as { PowerState: string }).PowerState = 'Off';
      },
      () => undefined,
    );
  };

  const serial = (fn: () => Promise<void>) => {
    queue = queue.then(fn).catch((e: unknown) => void log.push(`error ${(e as Error).message}`));
  };

  return {
    hooks: {
      onPowerChange: (_id, state, detail) => serial(async () => (state === 'On' ? powerOn(detail) : (log.push('power Off'), stopVm()))),
      onVirtualMedia: (_slot, image) => {
        if (image) {
          const url = o.reach ? o.reach(image) : image;
          const file = join(o.mediaDir, `media-${++fetched}.iso`);
          media = (async () => {
            const res = await fetch(url);
            if (!res.ok || !res.body) throw new Error(`the BMC could not fetch ${url}: HTTP ${res.status}`);
            await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), createWriteStream(file));
            log.push(`fetched ${image}`);
            return file;
          })();
          media.catch(() => undefined);
        } else {
          media = null;
          serial(async () => {
            if (vm?.running) await qmp(vm, 'eject', { id: CD, force: true });
            log.push('ejected');
          });
        }
      },
    },
    bind: (p) => void (peer = p),
    log,
    poweredOnAt,
    vm: () => vm,
    stop: async () => {
      await queue;
      await stopVm();
    },
  };
}
