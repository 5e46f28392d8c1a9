/**
 * libvirt domains through `virsh` (any connection URI). A system reference is the domain
 * UUID; names are accepted too.
 *
 * Boot device: libvirt has no one-time override, so the domain definition's boot order is
 * edited and redefined (`dumpxml --inactive` → edit → `define`): every change is persistent,
 * and a non-persistent request is applied persistently (the lifecycle sets the disk back
 * after deployment, as Ironic does for such platforms). A running domain only reads its
 * definition when its QEMU process starts, so `reboot` power-cycles (destroy + start)
 * instead of resetting when the definition's boot order differs from the live one.
 * The firmware (BIOS/UEFI) is part of the domain and not switched per boot: a `mode` that
 * matches it is accepted, another is `unsupported`. After `define` the definition is read
 * back (`dumpxml --inactive`): a boot order or firmware other than the one written is a
 * `protocol` failure naming both, never a change reported done.
 */
import {
  ProviderError,
  type BootDevice,
  type BootOptions,
  type Capability,
  type DiscoveredSystem,
  type Endpoint,
  type ManagementInterface,
  type PowerInterface,
  type PowerState,
  type PowerTarget,
  type Provider,
  type ProviderContext,
} from '../types.js';
import { DomainXml, type DomainSummary } from './domain-xml.js';
import { LIBVIRT, Virsh } from './virsh.js';

const CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>(['power', 'power.soft-off', 'boot.pxe', 'boot.disk', 'boot.cd', 'boot.persistent', 'boot.read-back', 'enumerate']);

/** `virsh domstate` → Plinth. A paused or suspended domain still holds its machine: on. */
const DOMSTATE_MAP: Record<string, PowerState> = {
  running: 'on',
  idle: 'on',
  blocked: 'on',
  paused: 'on',
  'in shutdown': 'on',
  pmsuspended: 'on',
  'shut off': 'off',
  shutoff: 'off',
  crashed: 'off',
};

export class LibvirtProvider implements Provider {
  readonly type = 'libvirt' as const;
  readonly capabilities = CAPABILITIES;
  readonly power: PowerInterface;
  readonly management: ManagementInterface;
  private readonly virsh: Virsh;

  constructor(endpoint: Endpoint) {
    this.virsh = new Virsh(endpoint);
    this.power = {
      getPowerState: (ref, ctx) => this.getPowerState(ref, ctx),
      setPowerState: (ref, target, ctx) => this.setPowerState(ref, target, ctx),
      reboot: (ref, ctx) => this.reboot(ref, ctx),
    };
    this.management = {
      setBootDevice: (ref, device, options, ctx) => this.setBootDevice(ref, device, options, ctx),
      listSystems: (ctx) => this.listSystems(ctx),
    };
  }

  private async domstate(ref: string, ctx: ProviderContext): Promise<string> {
    return (await this.virsh.check(['domstate', ref], ctx)).trim().split('\n')[0]!.trim();
  }

  async getPowerState(ref: string, ctx: ProviderContext): Promise<PowerState> {
    return DOMSTATE_MAP[await this.domstate(ref, ctx)] ?? 'unknown';
  }

  async setPowerState(ref: string, target: PowerTarget, ctx: ProviderContext): Promise<void> {
    const raw = await this.domstate(ref, ctx);
    const state = DOMSTATE_MAP[raw] ?? 'unknown';
    if (target === 'on') {
      if (raw === 'paused') await this.virsh.check(['resume', ref], ctx);
      else if (state !== 'on') await this.virsh.check(['start', ref], ctx);
      return;
    }
    if (state === 'off') return;
    await this.virsh.check([target === 'soft-off' ? 'shutdown' : 'destroy', ref], ctx);
  }

  async reboot(ref: string, ctx: ProviderContext): Promise<void> {
    const state = await this.getPowerState(ref, ctx);
    if (state === 'off') {
      await this.virsh.check(['start', ref], ctx);
      return;
    }
    const live = new DomainXml(await this.virsh.check(['dumpxml', ref], ctx)).summary();
    const defined = new DomainXml(await this.virsh.check(['dumpxml', '--inactive', ref], ctx)).summary();
    if (live.bootSignature !== defined.bootSignature) {
      // A reset keeps the running QEMU's boot order; a new one needs a new process.
      await this.virsh.check(['destroy', ref], ctx);
      await this.virsh.check(['start', ref], ctx);
      return;
    }
    await this.virsh.check(['reset', ref], ctx);
  }

  async setBootDevice(ref: string, device: BootDevice, options: BootOptions, ctx: ProviderContext): Promise<void> {
    if (device === 'uefi-http') throw new ProviderError(LIBVIRT, 'unsupported', 'libvirt has no boot device for UEFI HTTP boot');
    const domain = new DomainXml(await this.virsh.check(['dumpxml', '--inactive', ref], ctx));
    const before = domain.summary();
    if (options.mode && options.mode !== before.firmware) {
      throw new ProviderError(LIBVIRT, 'unsupported', `domain ${before.name} boots with ${before.firmware} firmware; libvirt does not switch firmware per boot`);
    }
    if (!options.persistent) ctx.log.debug('libvirt has no one-time boot override; the boot order is changed persistently', { domain: before.name, device });
    if (before.firstBootDevice === device) return;
    try {
      domain.setFirstBootDevice(device);
    } catch (err) {
      throw new ProviderError(LIBVIRT, 'unsupported', `domain ${before.name}: ${(err as Error).message}`, err);
    }
    await this.virsh.define(domain.toXml(), ctx);
    await this.checkBootOrder(ref, domain.summary(), ctx);
  }

  /** Reads the definition back: libvirt (or whatever sits in front of it) must keep the boot order and firmware written. */
  private async checkBootOrder(ref: string, wanted: DomainSummary, ctx: ProviderContext): Promise<void> {
    const kept = new DomainXml(await this.virsh.check(['dumpxml', '--inactive', ref], ctx)).summary();
    if (kept.firstBootDevice === wanted.firstBootDevice && kept.bootSignature === wanted.bootSignature && kept.firmware === wanted.firmware) return;
    const show = (s: DomainSummary): string => `${s.firstBootDevice ?? 'nothing'} first (${s.bootSignature || 'no boot elements'}, ${s.firmware})`;
    throw new ProviderError(LIBVIRT, 'protocol', `domain ${wanted.name}: libvirt accepted the boot order ${show(wanted)} but kept ${show(kept)}`);
  }

  async listSystems(ctx: ProviderContext): Promise<DiscoveredSystem[]> {
    const uuids = (await this.virsh.check(['list', '--all', '--uuid'], ctx))
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    const out: DiscoveredSystem[] = [];
    for (const uuid of uuids) {
      const summary = new DomainXml(await this.virsh.check(['dumpxml', '--inactive', uuid], ctx)).summary();
      out.push({ ref: summary.uuid || uuid, name: summary.name, systemUuid: summary.uuid || uuid, macs: summary.macs, powerState: await this.getPowerState(uuid, ctx) });
    }
    return out;
  }
}

export function createLibvirtProvider(endpoint: Endpoint): LibvirtProvider {
  return new LibvirtProvider(endpoint);
}
