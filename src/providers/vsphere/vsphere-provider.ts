/**
 * VMware vSphere virtual machines. Each endpoint is asked once which API it speaks: the
 * Automation REST API (`/api`, vCenter 7.0 U2+) when `POST /api/session` works, the SOAP
 * API (`/sdk`) when it answers 404 (older vCenter, ESXi, govmomi's simulator). The endpoint
 * option `api: 'rest' | 'soap'` skips the question. Where REST lacks a property (the BIOS
 * UUID before 7.0 U1) it is read over SOAP.
 *
 * A system reference is the VM's managed object id (`vm-42`), the same in both APIs.
 * Boot order is the VM's configured boot order (no one-time override exists): changes are
 * persistent and apply at the next power-on or reset. The firmware (BIOS/EFI) is part of
 * the VM: a matching `mode` is accepted, another is `unsupported`.
 */
import { isUselessMac, normalizeMac } from '../../core/mac.js';
import { EndpointHttpClient } from '../endpoint-http.js';
import {
  ProviderError,
  type BootDevice,
  type BootMode,
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
import { VsphereRestClient } from './vsphere-rest.js';
import { asArray, moRefXml, textOf, VSPHERE, VsphereSoapClient, xmlEscape, type MoRef } from './vsphere-soap.js';

const CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>(['power', 'power.soft-off', 'boot.pxe', 'boot.disk', 'boot.cd', 'boot.persistent', 'boot.read-back', 'sessions', 'enumerate']);

export type BootEntry = { kind: 'network'; key: string } | { kind: 'disk'; keys: string[] } | { kind: 'cdrom' } | { kind: 'floppy' };

export interface VmDevices {
  nics: string[];
  disks: string[];
  cdrom: boolean;
}

/**
 * The boot order that puts `device` first, keeping the rest as fallbacks in order (and the
 * first disk behind a network or CD boot when nothing else was listed).
 */
export function reorderBoot(entries: BootEntry[], devices: VmDevices, device: BootDevice): BootEntry[] {
  let first: BootEntry;
  if (device === 'pxe') {
    const existing = entries.find((e) => e.kind === 'network');
    if (!existing && devices.nics.length === 0) throw new ProviderError(VSPHERE, 'unsupported', 'the VM has no network adapter to boot from');
    first = existing ?? { kind: 'network', key: devices.nics[0]! };
  } else if (device === 'disk') {
    const existing = entries.find((e) => e.kind === 'disk');
    if (!existing && devices.disks.length === 0) throw new ProviderError(VSPHERE, 'unsupported', 'the VM has no disk to boot from');
    first = existing ?? { kind: 'disk', keys: [devices.disks[0]!] };
  } else if (device === 'cd') {
    if (!devices.cdrom) throw new ProviderError(VSPHERE, 'unsupported', 'the VM has no CD drive to boot from');
    first = { kind: 'cdrom' };
  } else {
    throw new ProviderError(VSPHERE, 'unsupported', 'vSphere has no boot order entry for UEFI HTTP boot');
  }
  const same = (a: BootEntry, b: BootEntry): boolean => JSON.stringify(a) === JSON.stringify(b);
  const rest = entries.filter((e) => !same(e, first));
  if (rest.length === 0 && first.kind !== 'disk' && devices.disks.length > 0) rest.push({ kind: 'disk', keys: [devices.disks[0]!] });
  return [first, ...rest];
}

export function firstBoot(entries: BootEntry[]): BootDevice | undefined {
  const kind = entries[0]?.kind;
  return kind === 'network' ? 'pxe' : kind === 'disk' ? 'disk' : kind === 'cdrom' ? 'cd' : undefined;
}

type PowerAction = 'start' | 'stop' | 'reset' | 'shutdown';

interface VsphereBackend {
  powerState(vm: string, ctx: ProviderContext): Promise<PowerState>;
  power(vm: string, action: PowerAction, ctx: ProviderContext): Promise<void>;
  firmware(vm: string, ctx: ProviderContext): Promise<BootMode>;
  boot(vm: string, ctx: ProviderContext): Promise<{ entries: BootEntry[]; devices: VmDevices }>;
  setBoot(vm: string, entries: BootEntry[], ctx: ProviderContext): Promise<void>;
  list(ctx: ProviderContext): Promise<DiscoveredSystem[]>;
}

// ------------------------------------------------------------------ REST

const REST_POWER: Record<string, PowerState> = { POWERED_ON: 'on', POWERED_OFF: 'off', SUSPENDED: 'off' };

interface RestVmInfo {
  name?: string;
  identity?: { bios_uuid?: string; instance_uuid?: string; name?: string };
  nics?: Record<string, { mac_address?: string }>;
  disks?: Record<string, unknown>;
  cdroms?: Record<string, unknown>;
  power_state?: string;
  boot?: { type?: string };
}

class RestBackend implements VsphereBackend {
  constructor(
    private readonly rest: VsphereRestClient,
    private readonly soap: () => VsphereSoapClient,
  ) {}

  private vmPath(vm: string): string {
    return `/api/vcenter/vm/${encodeURIComponent(vm)}`;
  }

  async powerState(vm: string, ctx: ProviderContext): Promise<PowerState> {
    const power = (await this.rest.request('GET', `${this.vmPath(vm)}/power`, ctx)) as { state?: string };
    return REST_POWER[power.state ?? ''] ?? 'unknown';
  }

  async power(vm: string, action: PowerAction, ctx: ProviderContext): Promise<void> {
    // A state change racing ours is success, not an error: the contract is idempotent.
    const alreadyThere = (e: { errorType: string | undefined }): boolean => e.errorType === 'ALREADY_IN_DESIRED_STATE';
    if (action === 'shutdown') await this.rest.request('POST', `${this.vmPath(vm)}/guest/power?action=shutdown`, ctx, undefined, alreadyThere);
    else await this.rest.request('POST', `${this.vmPath(vm)}/power?action=${action}`, ctx, undefined, alreadyThere);
  }

  async firmware(vm: string, ctx: ProviderContext): Promise<BootMode> {
    const boot = (await this.rest.request('GET', `${this.vmPath(vm)}/hardware/boot`, ctx)) as { type?: string };
    return boot.type === 'EFI' ? 'uefi' : 'legacy';
  }

  async boot(vm: string, ctx: ProviderContext): Promise<{ entries: BootEntry[]; devices: VmDevices }> {
    const info = (await this.rest.request('GET', this.vmPath(vm), ctx)) as RestVmInfo;
    const raw = (await this.rest.request('GET', `${this.vmPath(vm)}/hardware/boot/device`, ctx)) as Array<{ type?: string; nic?: string; disks?: string[] }>;
    const entries: BootEntry[] = [];
    for (const e of raw ?? []) {
      if (e.type === 'ETHERNET' && e.nic) entries.push({ kind: 'network', key: e.nic });
      else if (e.type === 'DISK') entries.push({ kind: 'disk', keys: e.disks ?? [] });
      else if (e.type === 'CDROM') entries.push({ kind: 'cdrom' });
      else if (e.type === 'FLOPPY') entries.push({ kind: 'floppy' });
    }
    const keys = (o: Record<string, unknown> | undefined): string[] => Object.keys(o ?? {}).sort((a, b) => Number(a) - Number(b));
    return { entries, devices: { nics: keys(info.nics), disks: keys(info.disks), cdrom: keys(info.cdroms).length > 0 } };
  }

  async setBoot(vm: string, entries: BootEntry[], ctx: ProviderContext): Promise<void> {
    const devices = entries.map((e) =>
      e.kind === 'network' ? { type: 'ETHERNET', nic: e.key } : e.kind === 'disk' ? { type: 'DISK', disks: e.keys } : e.kind === 'cdrom' ? { type: 'CDROM' } : { type: 'FLOPPY' },
    );
    await this.rest.request('PUT', `${this.vmPath(vm)}/hardware/boot/device`, ctx, { devices });
  }

  async list(ctx: ProviderContext): Promise<DiscoveredSystem[]> {
    const vms = (await this.rest.request('GET', '/api/vcenter/vm', ctx)) as Array<{ vm: string; name?: string; power_state?: string }>;
    const out: DiscoveredSystem[] = [];
    for (const summary of vms ?? []) {
      const info = (await this.rest.request('GET', this.vmPath(summary.vm), ctx)) as RestVmInfo;
      const system: DiscoveredSystem = { ref: summary.vm, macs: [], powerState: REST_POWER[summary.power_state ?? ''] ?? 'unknown' };
      const name = info.name ?? summary.name;
      if (name) system.name = name;
      let uuid = info.identity?.bios_uuid;
      if (!uuid) {
        // Vm.Info has no identity before vSphere 7.0 U1: the BIOS UUID is config.uuid over SOAP.
        const props = await this.soap().retrieveOne({ type: 'VirtualMachine', value: summary.vm }, ['config.uuid'], ctx);
        uuid = textOf(props['config.uuid']);
      }
      if (uuid) system.systemUuid = uuid.toLowerCase();
      for (const key of Object.keys(info.nics ?? {}).sort((a, b) => Number(a) - Number(b))) {
        const mac = normalizeMac(info.nics![key]!.mac_address ?? '');
        if (mac && !isUselessMac(mac)) system.macs.push(mac);
      }
      out.push(system);
    }
    return out;
  }
}

// ------------------------------------------------------------------ SOAP

const SOAP_POWER: Record<string, PowerState> = { poweredOn: 'on', poweredOff: 'off', suspended: 'off' };
const SOAP_POWER_METHOD: Record<PowerAction, string> = { start: 'PowerOnVM_Task', stop: 'PowerOffVM_Task', reset: 'ResetVM_Task', shutdown: 'ShutdownGuest' };

type SoapDevice = Record<string, unknown>;

function deviceType(d: SoapDevice): string {
  return String(d['@_type'] ?? '');
}

class SoapBackend implements VsphereBackend {
  constructor(private readonly soap: VsphereSoapClient) {}

  private ref(vm: string): MoRef {
    return { type: 'VirtualMachine', value: vm };
  }

  async powerState(vm: string, ctx: ProviderContext): Promise<PowerState> {
    const props = await this.soap.retrieveOne(this.ref(vm), ['runtime.powerState'], ctx);
    return SOAP_POWER[textOf(props['runtime.powerState']) ?? ''] ?? 'unknown';
  }

  async power(vm: string, action: PowerAction, ctx: ProviderContext): Promise<void> {
    const body = moRefXml('_this', this.ref(vm));
    if (action === 'shutdown') {
      await this.soap.invoke('ShutdownGuest', body, ctx);
    } else await this.soap.runTask(SOAP_POWER_METHOD[action], body, ctx);
  }

  async firmware(vm: string, ctx: ProviderContext): Promise<BootMode> {
    const props = await this.soap.retrieveOne(this.ref(vm), ['config.firmware'], ctx);
    return textOf(props['config.firmware']) === 'efi' ? 'uefi' : 'legacy';
  }

  async boot(vm: string, ctx: ProviderContext): Promise<{ entries: BootEntry[]; devices: VmDevices }> {
    const props = await this.soap.retrieveOne(this.ref(vm), ['config.hardware.device', 'config.bootOptions'], ctx);
    const devices = asArray((props['config.hardware.device'] as Record<string, unknown> | undefined)?.['VirtualDevice']) as SoapDevice[];
    const nics = devices.filter((d) => 'macAddress' in d).map((d) => String(d['key']));
    const disks = devices.filter((d) => deviceType(d) === 'VirtualDisk').map((d) => String(d['key']));
    const cdrom = devices.some((d) => deviceType(d) === 'VirtualCdrom');
    const order = asArray((props['config.bootOptions'] as Record<string, unknown> | undefined)?.['bootOrder']) as SoapDevice[];
    const entries: BootEntry[] = [];
    for (const o of order) {
      const t = deviceType(o);
      if (t.endsWith('BootableEthernetDevice')) entries.push({ kind: 'network', key: String(o['deviceKey']) });
      else if (t.endsWith('BootableDiskDevice')) entries.push({ kind: 'disk', keys: [String(o['deviceKey'])] });
      else if (t.endsWith('BootableCdromDevice')) entries.push({ kind: 'cdrom' });
      else if (t.endsWith('BootableFloppyDevice')) entries.push({ kind: 'floppy' });
    }
    return { entries, devices: { nics, disks, cdrom } };
  }

  async setBoot(vm: string, entries: BootEntry[], ctx: ProviderContext): Promise<void> {
    const order = entries
      .flatMap((e) =>
        e.kind === 'network'
          ? [`<bootOrder xsi:type="VirtualMachineBootOptionsBootableEthernetDevice"><deviceKey>${xmlEscape(e.key)}</deviceKey></bootOrder>`]
          : e.kind === 'disk'
            ? e.keys.map((k) => `<bootOrder xsi:type="VirtualMachineBootOptionsBootableDiskDevice"><deviceKey>${xmlEscape(k)}</deviceKey></bootOrder>`)
            : e.kind === 'cdrom'
              ? ['<bootOrder xsi:type="VirtualMachineBootOptionsBootableCdromDevice"/>']
              : ['<bootOrder xsi:type="VirtualMachineBootOptionsBootableFloppyDevice"/>'],
      )
      .join('');
    await this.soap.runTask('ReconfigVM_Task', `${moRefXml('_this', this.ref(vm))}<spec><bootOptions>${order}</bootOptions></spec>`, ctx);
  }

  async list(ctx: ProviderContext): Promise<DiscoveredSystem[]> {
    const objects = await this.soap.retrieveAll('VirtualMachine', ['name', 'config.uuid', 'config.template', 'runtime.powerState', 'config.hardware.device'], ctx);
    const out: DiscoveredSystem[] = [];
    for (const { obj, props } of objects.sort((a, b) => a.obj.value.localeCompare(b.obj.value, undefined, { numeric: true }))) {
      if (textOf(props['config.template']) === 'true') continue;
      const system: DiscoveredSystem = { ref: obj.value, macs: [], powerState: SOAP_POWER[textOf(props['runtime.powerState']) ?? ''] ?? 'unknown' };
      const name = textOf(props['name']);
      const uuid = textOf(props['config.uuid']);
      if (name) system.name = name;
      if (uuid) system.systemUuid = uuid.toLowerCase();
      for (const d of asArray((props['config.hardware.device'] as Record<string, unknown> | undefined)?.['VirtualDevice']) as SoapDevice[]) {
        const mac = typeof d['macAddress'] === 'string' ? normalizeMac(d['macAddress']) : null;
        if (mac && !isUselessMac(mac) && !system.macs.includes(mac)) system.macs.push(mac);
      }
      out.push(system);
    }
    return out;
  }
}

// ------------------------------------------------------------------ provider

export class VsphereProvider implements Provider {
  readonly type = 'vsphere' as const;
  readonly capabilities = CAPABILITIES;
  readonly power: PowerInterface;
  readonly management: ManagementInterface;
  private readonly http: EndpointHttpClient;
  private readonly rest: VsphereRestClient;
  private readonly endpoint: Endpoint;
  private soapClient: VsphereSoapClient | undefined;
  private chosen: Promise<VsphereBackend> | undefined;
  private chosenApi: 'rest' | 'soap' | undefined;

  constructor(endpoint: Endpoint) {
    this.endpoint = endpoint;
    this.http = new EndpointHttpClient({ provider: VSPHERE, baseUrl: endpoint.address, caCert: endpoint.caCert, insecure: endpoint.insecure, secrets: () => [endpoint.password] });
    this.rest = new VsphereRestClient(endpoint, this.http);
    this.power = {
      getPowerState: async (ref, ctx) => (await this.backend(ctx)).powerState(ref, ctx),
      setPowerState: (ref, target, ctx) => this.setPowerState(ref, target, ctx),
      reboot: (ref, ctx) => this.reboot(ref, ctx),
    };
    this.management = {
      setBootDevice: (ref, device, options, ctx) => this.setBootDevice(ref, device, options, ctx),
      listSystems: async (ctx) => (await this.backend(ctx)).list(ctx),
    };
  }

  /** Which API this endpoint answered with (after the first call). */
  get api(): 'rest' | 'soap' | undefined {
    return this.chosenApi;
  }

  private soap(): VsphereSoapClient {
    this.soapClient ??= new VsphereSoapClient(this.endpoint, this.http);
    return this.soapClient;
  }

  private backend(ctx: ProviderContext): Promise<VsphereBackend> {
    this.chosen ??= (async (): Promise<VsphereBackend> => {
      const forced = this.endpoint.options?.['api'];
      const rest = forced === 'soap' ? false : forced === 'rest' ? true : await this.rest.open(ctx);
      this.chosenApi = rest ? 'rest' : 'soap';
      ctx.log.debug('vsphere: API chosen', { api: this.chosenApi });
      return rest ? new RestBackend(this.rest, () => this.soap()) : new SoapBackend(this.soap());
    })();
    // A failed probe (unreachable, bad credentials) is asked again next time.
    this.chosen.catch(() => {
      this.chosen = undefined;
    });
    return this.chosen;
  }

  async setPowerState(ref: string, target: PowerTarget, ctx: ProviderContext): Promise<void> {
    const backend = await this.backend(ctx);
    const state = await backend.powerState(ref, ctx);
    if (target === 'on' && state === 'on') return;
    if (target !== 'on' && state === 'off') return;
    await backend.power(ref, target === 'on' ? 'start' : target === 'off' ? 'stop' : 'shutdown', ctx);
  }

  async reboot(ref: string, ctx: ProviderContext): Promise<void> {
    const backend = await this.backend(ctx);
    await backend.power(ref, (await backend.powerState(ref, ctx)) === 'off' ? 'start' : 'reset', ctx);
  }

  async setBootDevice(ref: string, device: BootDevice, options: BootOptions, ctx: ProviderContext): Promise<void> {
    if (device === 'uefi-http') throw new ProviderError(VSPHERE, 'unsupported', 'vSphere has no boot order entry for UEFI HTTP boot');
    const backend = await this.backend(ctx);
    if (options.mode) {
      const firmware = await backend.firmware(ref, ctx);
      if (firmware !== options.mode) throw new ProviderError(VSPHERE, 'unsupported', `${ref} boots with ${firmware === 'uefi' ? 'EFI' : 'BIOS'} firmware; it is not switched per boot`);
    }
    if (!options.persistent) ctx.log.debug('vSphere has no one-time boot override; the boot order is changed persistently', { vm: ref, device });
    const { entries, devices } = await backend.boot(ref, ctx);
    const next = reorderBoot(entries, devices, device);
    if (JSON.stringify(next) === JSON.stringify(entries)) return;
    await backend.setBoot(ref, next, ctx);
    const kept = (await backend.boot(ref, ctx)).entries;
    if (firstBoot(kept) !== device) {
      throw new ProviderError(VSPHERE, 'protocol', `${ref}: vSphere accepted a boot order with ${device} first but kept ${firstBoot(kept) ?? 'no device'} first`);
    }
  }

  async close(): Promise<void> {
    const ctx: ProviderContext = { timeoutMs: 10_000, log: { debug: () => undefined, info: () => undefined, warn: () => undefined } };
    await this.rest.close(ctx).catch(() => undefined);
    await this.soapClient?.logout(ctx).catch(() => undefined);
    await this.http.close();
  }
}

export function createVsphereProvider(endpoint: Endpoint): VsphereProvider {
  return new VsphereProvider(endpoint);
}
