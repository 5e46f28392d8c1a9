/**
 * Proxmox VE QEMU VMs through the HTTP API. A system reference is the VM id (`100`, unique
 * in a cluster) or `node/vmid`; the node is looked up in `/cluster/resources` on every call
 * because VMs migrate. The endpoint option `node` restricts `listSystems` to one node.
 *
 * Power calls return a task (UPID); start, stop and reset wait for it so that the next
 * status read already shows the result, while an ACPI shutdown returns once accepted.
 * The boot order lives in the VM configuration (`boot: order=net0;scsi0`): there is no
 * one-time override, so changes are persistent, and a change made while the VM runs is
 * pending until its next start — `reboot` then stops and starts instead of resetting.
 * After writing, the configuration is read back: a `boot` value other than the one written is
 * a `protocol` failure naming both, never a change reported done.
 * Virtual media: an ISO volume (`local:iso/x.iso`), or an http(s) URL that the node first
 * downloads into the ISO storage (endpoint option `isoStorage`, default `local`), goes into
 * the VM's CD drive (ide2 unless the VM has another).
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
import { PROXMOX, ProxmoxClient } from './proxmox-client.js';
import { bootValueFor, cdDrive, firmwareOf, smbiosUuid, vmMacs, type VmConfig } from './proxmox-config.js';

const CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>(['power', 'power.soft-off', 'boot.pxe', 'boot.disk', 'boot.cd', 'boot.persistent', 'boot.read-back', 'vmedia', 'enumerate']);

interface ClusterVm {
  id?: string;
  type?: string;
  node?: string;
  vmid?: number;
  name?: string;
  status?: string;
  template?: number;
}

interface VmLocation {
  node: string;
  vmid: number;
  path: string;
}

const STATUS_MAP: Record<string, PowerState> = { running: 'on', stopped: 'off' };
const ISO_VOLUME = /^[A-Za-z0-9][\w.-]*:iso\/.+/;

export class ProxmoxProvider implements Provider {
  readonly type = 'proxmox' as const;
  readonly capabilities = CAPABILITIES;
  readonly power: PowerInterface;
  readonly management: ManagementInterface;
  private readonly client: ProxmoxClient;
  private readonly endpoint: Endpoint;

  constructor(endpoint: Endpoint) {
    this.endpoint = endpoint;
    this.client = new ProxmoxClient(endpoint);
    this.power = {
      getPowerState: (ref, ctx) => this.getPowerState(ref, ctx),
      setPowerState: (ref, target, ctx) => this.setPowerState(ref, target, ctx),
      reboot: (ref, ctx) => this.reboot(ref, ctx),
    };
    this.management = {
      setBootDevice: (ref, device, options, ctx) => this.setBootDevice(ref, device, options, ctx),
      insertVirtualMedia: (ref, url, ctx) => this.insertVirtualMedia(ref, url, ctx),
      ejectVirtualMedia: (ref, ctx) => this.ejectVirtualMedia(ref, ctx),
      listSystems: (ctx) => this.listSystems(ctx),
    };
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private option(name: string): string | undefined {
    const v = this.endpoint.options?.[name];
    return typeof v === 'string' && v !== '' ? v : undefined;
  }

  private async clusterVms(ctx: ProviderContext): Promise<ClusterVm[]> {
    const all = await this.client.get<ClusterVm[]>('/cluster/resources', ctx, { type: 'vm' });
    return (Array.isArray(all) ? all : []).filter((r) => r.type === 'qemu' && typeof r.vmid === 'number' && typeof r.node === 'string');
  }

  private async locate(ref: string, ctx: ProviderContext): Promise<VmLocation> {
    const m = /^(?:([^/]+)\/)?(\d+)$/.exec(ref.trim());
    if (!m) throw new ProviderError(PROXMOX, 'not-found', `'${ref}' is not a VM reference (vmid or node/vmid)`);
    const vmid = Number(m[2]);
    const found = (await this.clusterVms(ctx)).find((r) => r.vmid === vmid);
    if (!found) throw new ProviderError(PROXMOX, 'not-found', `${this.client.http.baseUrl.host}: no QEMU VM ${vmid} in the cluster`);
    const node = found.node!;
    return { node, vmid, path: `/nodes/${encodeURIComponent(node)}/qemu/${vmid}` };
  }

  private async status(vm: VmLocation, ctx: ProviderContext): Promise<{ status?: string; qmpstatus?: string }> {
    return this.client.get(`${vm.path}/status/current`, ctx);
  }

  private async runTask(vm: VmLocation, action: string, ctx: ProviderContext, wait = true): Promise<void> {
    const upid = await this.client.post<string>(`${vm.path}/status/${action}`, {}, ctx);
    if (wait && typeof upid === 'string' && upid.startsWith('UPID:')) await this.client.waitForTask(vm.node, upid, ctx);
  }

  async getPowerState(ref: string, ctx: ProviderContext): Promise<PowerState> {
    const vm = await this.locate(ref, ctx);
    return STATUS_MAP[(await this.status(vm, ctx)).status ?? ''] ?? 'unknown';
  }

  async setPowerState(ref: string, target: PowerTarget, ctx: ProviderContext): Promise<void> {
    const vm = await this.locate(ref, ctx);
    const current = await this.status(vm, ctx);
    const state = STATUS_MAP[current.status ?? ''] ?? 'unknown';
    if (target === 'on') {
      if (state === 'on' && current.qmpstatus === 'paused') await this.runTask(vm, 'resume', ctx);
      else if (state !== 'on') await this.runTask(vm, 'start', ctx);
      return;
    }
    if (state === 'off') return;
    if (target === 'soft-off') await this.runTask(vm, 'shutdown', ctx, false);
    else await this.runTask(vm, 'stop', ctx);
  }

  async reboot(ref: string, ctx: ProviderContext): Promise<void> {
    const vm = await this.locate(ref, ctx);
    if (STATUS_MAP[(await this.status(vm, ctx)).status ?? ''] !== 'on') {
      await this.runTask(vm, 'start', ctx);
      return;
    }
    const pending = await this.client.get<VmConfig>(`${vm.path}/config`, ctx);
    const running = await this.client.get<VmConfig>(`${vm.path}/config`, ctx, { current: 1 });
    if (pending['boot'] !== running['boot']) {
      // A pending boot order only applies when a new QEMU process starts.
      await this.runTask(vm, 'stop', ctx);
      await this.runTask(vm, 'start', ctx);
      return;
    }
    await this.runTask(vm, 'reset', ctx);
  }

  async setBootDevice(ref: string, device: BootDevice, options: BootOptions, ctx: ProviderContext): Promise<void> {
    if (device === 'uefi-http') throw new ProviderError(PROXMOX, 'unsupported', 'Proxmox VE has no boot order entry for UEFI HTTP boot');
    const vm = await this.locate(ref, ctx);
    const config = await this.client.get<VmConfig>(`${vm.path}/config`, ctx);
    const firmware = firmwareOf(config);
    if (options.mode && options.mode !== firmware) {
      throw new ProviderError(PROXMOX, 'unsupported', `VM ${vm.vmid} boots with ${firmware === 'uefi' ? 'OVMF (UEFI)' : 'SeaBIOS (legacy)'}; the firmware is not switched per boot`);
    }
    const boot = bootValueFor(config, device);
    if (!boot) throw new ProviderError(PROXMOX, 'unsupported', `VM ${vm.vmid} has no ${device === 'pxe' ? 'network' : device === 'cd' ? 'CD' : 'disk'} device to boot from`);
    if (!options.persistent) ctx.log.debug('Proxmox VE has no one-time boot override; the boot order is changed persistently', { vmid: vm.vmid, device });
    if (config['boot'] === boot) return;
    // The digest makes the write fail instead of overwriting a concurrent configuration change.
    await this.client.put(`${vm.path}/config`, { boot, digest: typeof config['digest'] === 'string' ? config['digest'] : undefined }, ctx);
    const kept = (await this.client.get<VmConfig>(`${vm.path}/config`, ctx))['boot'];
    if (kept !== boot) {
      throw new ProviderError(PROXMOX, 'protocol', `VM ${vm.vmid}: Proxmox VE accepted 'boot: ${boot}' but kept 'boot: ${String(kept ?? '(none)')}'`);
    }
  }

  /** The ISO volume for a URL or volume id, downloading it into the node's ISO storage if needed. */
  private async isoVolume(vm: VmLocation, url: string, ctx: ProviderContext): Promise<string> {
    if (ISO_VOLUME.test(url)) return url;
    if (!/^https?:\/\//.test(url)) throw new ProviderError(PROXMOX, 'protocol', `'${url}' is neither an http(s) URL nor an ISO volume (storage:iso/file.iso)`);
    const storage = this.option('isoStorage') ?? 'local';
    let filename = (new URL(url).pathname.split('/').pop() ?? '').replace(/[^A-Za-z0-9._-]/g, '_');
    if (!/\.iso$/i.test(filename)) filename = `${filename || 'image'}.iso`;
    const volid = `${storage}:iso/${filename}`;
    const storagePath = `/nodes/${encodeURIComponent(vm.node)}/storage/${encodeURIComponent(storage)}`;
    const content = await this.client.get<Array<{ volid?: string }>>(`${storagePath}/content`, ctx, { content: 'iso' });
    if (!content.some((c) => c.volid === volid)) {
      const upid = await this.client.post<string>(`${storagePath}/download-url`, { url, content: 'iso', filename }, ctx);
      await this.client.waitForTask(vm.node, upid, ctx);
    }
    return volid;
  }

  async insertVirtualMedia(ref: string, url: string, ctx: ProviderContext): Promise<void> {
    const vm = await this.locate(ref, ctx);
    const volid = await this.isoVolume(vm, url, ctx);
    const config = await this.client.get<VmConfig>(`${vm.path}/config`, ctx);
    const drive = cdDrive(config);
    if (drive?.volume === volid) return;
    await this.client.put(`${vm.path}/config`, { [drive?.key ?? 'ide2']: `${volid},media=cdrom` }, ctx);
  }

  async ejectVirtualMedia(ref: string, ctx: ProviderContext): Promise<void> {
    const vm = await this.locate(ref, ctx);
    const drive = cdDrive(await this.client.get<VmConfig>(`${vm.path}/config`, ctx));
    if (!drive || drive.volume === 'none') return;
    await this.client.put(`${vm.path}/config`, { [drive.key]: 'none,media=cdrom' }, ctx);
  }

  async listSystems(ctx: ProviderContext): Promise<DiscoveredSystem[]> {
    const onlyNode = this.option('node');
    const vms = (await this.clusterVms(ctx)).filter((r) => r.template !== 1 && (!onlyNode || r.node === onlyNode)).sort((a, b) => a.vmid! - b.vmid!);
    const out: DiscoveredSystem[] = [];
    for (const r of vms) {
      const config = await this.client.get<VmConfig>(`/nodes/${encodeURIComponent(r.node!)}/qemu/${r.vmid}/config`, ctx);
      const system: DiscoveredSystem = { ref: String(r.vmid), macs: vmMacs(config), powerState: STATUS_MAP[r.status ?? ''] ?? 'unknown' };
      const name = typeof config['name'] === 'string' ? config['name'] : r.name;
      if (name) system.name = name;
      const uuid = smbiosUuid(config);
      if (uuid) system.systemUuid = uuid;
      out.push(system);
    }
    return out;
  }
}

export function createProxmoxProvider(endpoint: Endpoint): ProxmoxProvider {
  return new ProxmoxProvider(endpoint);
}
