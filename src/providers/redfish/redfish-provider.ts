/**
 * Redfish (DMTF DSP0266): power through `ComputerSystem.Reset`, boot through the
 * `Boot.BootSourceOverride*` properties, virtual media through the VirtualMedia resources,
 * inventory from `/redfish/v1/Systems`.
 *
 * A system reference (`ref`) is the ComputerSystem's `@odata.id`
 * (`/redfish/v1/Systems/437XR1138R2`); a bare Id is accepted too. The provider never
 * assumes a ResetType, boot target or URI layout the service has not advertised: it reads
 * the resource, chooses among what is offered, and falls back only where a quirk says so.
 */
import { normalizeMac, isUselessMac } from '../../core/mac.js';
import { abortableSleep } from '../call-deadline.js';
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
import { REDFISH, RedfishClient, type RedfishResource } from './redfish-client.js';
import { detectRedfishVendor, isRedfishVendor, redfishQuirks, type RedfishQuirks } from './redfish-quirks.js';

const CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>([
  'power',
  'power.soft-off',
  'boot.pxe',
  'boot.disk',
  'boot.cd',
  'boot.uefi-http',
  'boot.persistent',
  'boot.mode',
  'boot.read-back',
  'sessions',
  'vmedia',
  'enumerate',
]);

/** Redfish PowerState → Plinth, as Ironic's redfish driver maps it (transitions count as their target). */
const POWER_STATE_MAP: Record<string, PowerState> = {
  On: 'on',
  PoweringOn: 'on',
  Paused: 'on',
  Off: 'off',
  PoweringOff: 'off',
};

/** ResetType values in order of preference for each intent. */
const RESET_PREFERENCES = {
  // NOTE: PushPowerButton is a last resort for power-on and soft-off only: the provider has
  // just read the power state, so a button press has a known effect (HPE iLO 4 offers no
  // GracefulShutdown; its list is On, ForceOff, ForceRestart, Nmi, PushPowerButton).
  on: ['On', 'ForceOn', 'PushPowerButton'],
  off: ['ForceOff'],
  'soft-off': ['GracefulShutdown', 'PushPowerButton'],
  // NOTE: iDRAC 9 offers no GracefulRestart nor PowerCycle on many firmwares
  // (quadsproject/badfish #10, #118), hence ForceRestart first and power off + on as the fallback.
  restart: ['ForceRestart', 'PowerCycle'],
} as const;

// NOTE: a service that advertises neither `ResetType@Redfish.AllowableValues` nor an
// `@Redfish.ActionInfo` is assumed to accept the four values every implementation reviewed
// supports (DMTF mockups, iDRAC, iLO, XCC, OpenBMC).
const ASSUMED_RESET_TYPES = ['On', 'ForceOff', 'GracefulShutdown', 'ForceRestart'];

const BOOT_TARGETS: Record<BootDevice, string> = {
  pxe: 'Pxe',
  disk: 'Hdd',
  cd: 'Cd',
  'uefi-http': 'UefiHttp',
};

const BOOT_MODES = { uefi: 'UEFI', legacy: 'Legacy' } as const;

const POLL_INTERVAL_MS = 250;

const QUIET_LOG = { debug: () => undefined, info: () => undefined, warn: () => undefined };

function odataId(value: unknown): string | undefined {
  if (value && typeof value === 'object') {
    const id = (value as { '@odata.id'?: unknown })['@odata.id'];
    if (typeof id === 'string') return id;
  }
  return undefined;
}

function members(collection: RedfishResource): string[] {
  const list = collection['Members'];
  if (!Array.isArray(list)) return [];
  return list.map(odataId).filter((x): x is string => x !== undefined);
}

function stringList(value: unknown): string[] | undefined {
  return Array.isArray(value) ? value.filter((x): x is string => typeof x === 'string') : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

function boot(system: RedfishResource): Record<string, unknown> {
  const b = system['Boot'];
  return b && typeof b === 'object' ? (b as Record<string, unknown>) : {};
}

export class RedfishProvider implements Provider {
  readonly type = 'redfish' as const;
  readonly capabilities = CAPABILITIES;
  readonly power: PowerInterface;
  readonly management: ManagementInterface;
  private readonly client: RedfishClient;
  private readonly endpoint: Endpoint;
  private quirksCache: RedfishQuirks | undefined;

  constructor(endpoint: Endpoint) {
    this.endpoint = endpoint;
    this.client = new RedfishClient(endpoint);
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

  /** The authentication actually in use (`session` or `basic`), once a call has been made. */
  get authMode(): 'session' | 'basic' | undefined {
    return this.client.authMode;
  }

  async close(): Promise<void> {
    await this.client.close({ timeoutMs: 10_000, log: QUIET_LOG });
  }

  /** Path of a system from its reference: an `@odata.id`, or a bare Id under /redfish/v1/Systems. */
  private systemPath(ref: string): string {
    if (ref.startsWith('/') || /^https?:\/\//.test(ref)) return ref;
    return `/redfish/v1/Systems/${encodeURIComponent(ref)}`;
  }

  private async readSystem(ref: string, ctx: ProviderContext): Promise<{ system: RedfishResource; etag: string | undefined; path: string }> {
    const path = this.systemPath(ref);
    const { resource, etag } = await this.client.get(path, ctx);
    return { system: resource, etag, path };
  }

  private async quirks(system: RedfishResource, ctx: ProviderContext): Promise<RedfishQuirks> {
    if (this.quirksCache) return this.quirksCache;
    const forced = this.endpoint.options?.['quirks'];
    if (isRedfishVendor(forced)) {
      this.quirksCache = redfishQuirks(forced);
      return this.quirksCache;
    }
    let manager: RedfishResource | undefined;
    const managedBy = (system['Links'] as { ManagedBy?: unknown } | undefined)?.ManagedBy;
    const managerPath = Array.isArray(managedBy) ? odataId(managedBy[0]) : undefined;
    if (managerPath) {
      try {
        manager = (await this.client.get(managerPath, ctx)).resource;
      } catch (err) {
        ctx.log.debug('redfish: manager not readable for vendor detection', { error: (err as Error).message });
      }
    }
    const vendor = detectRedfishVendor([system, manager]);
    ctx.log.debug('redfish: vendor detected', { vendor });
    this.quirksCache = redfishQuirks(vendor);
    return this.quirksCache;
  }

  // ---------------------------------------------------------------- power

  private powerStateOf(system: RedfishResource): PowerState {
    const raw = system['PowerState'];
    return (typeof raw === 'string' && POWER_STATE_MAP[raw]) || 'unknown';
  }

  async getPowerState(ref: string, ctx: ProviderContext): Promise<PowerState> {
    const { system } = await this.readSystem(ref, ctx);
    return this.powerStateOf(system);
  }

  /** The reset action of a system and the ResetType values it accepts. */
  private async resetAction(system: RedfishResource, ctx: ProviderContext): Promise<{ target: string; allowed: string[] }> {
    const actions = system['Actions'] as Record<string, unknown> | undefined;
    const action = actions?.['#ComputerSystem.Reset'] as Record<string, unknown> | undefined;
    const target = text(action?.['target']);
    if (!action || !target) throw new ProviderError(REDFISH, 'unsupported', `${odataId(system) ?? 'system'} has no ComputerSystem.Reset action`);
    const listed = stringList(action['ResetType@Redfish.AllowableValues']);
    if (listed) return { target, allowed: listed };
    // NOTE: services built on the ActionInfo model (OpenBMC's bmcweb, DMTF's
    // Redfish-Interface-Emulator) list the values in a separate ResetActionInfo resource.
    const infoPath = text(action['@Redfish.ActionInfo']);
    if (infoPath) {
      const info = (await this.client.get(infoPath, ctx)).resource;
      const params = Array.isArray(info['Parameters']) ? (info['Parameters'] as Array<Record<string, unknown>>) : [];
      const resetType = params.find((p) => p['Name'] === 'ResetType');
      const values = stringList(resetType?.['AllowableValues']);
      if (values) return { target, allowed: values };
    }
    return { target, allowed: ASSUMED_RESET_TYPES };
  }

  private chooseReset(allowed: string[], intent: keyof typeof RESET_PREFERENCES): string | undefined {
    return RESET_PREFERENCES[intent].find((t) => allowed.includes(t));
  }

  private async reset(system: RedfishResource, resetType: string, target: string, ctx: ProviderContext): Promise<void> {
    ctx.log.debug('redfish: reset', { system: odataId(system), resetType });
    await this.client.post(target, { ResetType: resetType }, ctx);
  }

  async setPowerState(ref: string, target: PowerTarget, ctx: ProviderContext): Promise<void> {
    const { system } = await this.readSystem(ref, ctx);
    const state = this.powerStateOf(system);
    if (target === 'on' && state === 'on') return;
    if (target !== 'on' && state === 'off') return;
    const action = await this.resetAction(system, ctx);
    const resetType = this.chooseReset(action.allowed, target);
    if (!resetType) {
      throw new ProviderError(REDFISH, 'unsupported', `${this.systemPath(ref)} offers no reset type for '${target}' (offers ${action.allowed.join(', ')})`);
    }
    await this.reset(system, resetType, action.target, ctx);
  }

  async reboot(ref: string, ctx: ProviderContext): Promise<void> {
    const { system } = await this.readSystem(ref, ctx);
    const action = await this.resetAction(system, ctx);
    // NOTE: iLO refuses restart types while the server is off (400
    // iLO.0.10.InvalidOperationForSystemState, goldyfruit/ansible-ilo #1): an off system is
    // powered on instead, which is also the contract.
    if (this.powerStateOf(system) === 'off') {
      const on = this.chooseReset(action.allowed, 'on');
      if (!on) throw new ProviderError(REDFISH, 'unsupported', `${this.systemPath(ref)} offers no reset type to power on`);
      await this.reset(system, on, action.target, ctx);
      return;
    }
    const restart = this.chooseReset(action.allowed, 'restart');
    if (restart) {
      await this.reset(system, restart, action.target, ctx);
      return;
    }
    const off = this.chooseReset(action.allowed, 'off');
    const on = this.chooseReset(action.allowed, 'on');
    if (!off || !on) {
      throw new ProviderError(REDFISH, 'unsupported', `${this.systemPath(ref)} offers no hard reset (offers ${action.allowed.join(', ')})`);
    }
    await this.reset(system, off, action.target, ctx);
    await this.waitForPower(ref, 'off', ctx);
    await this.reset(system, on, action.target, ctx);
  }

  private async waitForPower(ref: string, wanted: PowerState, ctx: ProviderContext): Promise<void> {
    const deadline = Date.now() + ctx.timeoutMs;
    while (Date.now() < deadline) {
      if ((await this.getPowerState(ref, ctx)) === wanted) return;
      await abortableSleep(POLL_INTERVAL_MS, ctx.signal);
    }
    throw new ProviderError(REDFISH, 'timeout', `${this.systemPath(ref)} did not reach power '${wanted}' within ${ctx.timeoutMs} ms`);
  }

  // ---------------------------------------------------------------- boot

  async setBootDevice(ref: string, device: BootDevice, options: BootOptions, ctx: ProviderContext): Promise<void> {
    const { system, etag, path } = await this.readSystem(ref, ctx);
    const quirks = await this.quirks(system, ctx);
    const current = boot(system);
    const target = BOOT_TARGETS[device];

    // NOTE: iDRAC 10 omits BootSourceOverrideTarget@Redfish.AllowableValues
    // (dell/iDRAC-Redfish-Scripting #324): without a list, the target is tried as is.
    const targets = stringList(current['BootSourceOverrideTarget@Redfish.AllowableValues']);
    if (targets && !targets.includes(target)) {
      throw new ProviderError(REDFISH, 'unsupported', `${path} cannot boot from ${target} (offers ${targets.join(', ')})`);
    }
    const enabled = options.persistent ? 'Continuous' : 'Once';
    const enabledValues = stringList(current['BootSourceOverrideEnabled@Redfish.AllowableValues']);
    if (enabledValues && !enabledValues.includes(enabled)) {
      throw new ProviderError(REDFISH, 'unsupported', `${path} does not allow a '${enabled}' boot override (offers ${enabledValues.join(', ')})`);
    }

    let wantedMode: string | undefined = options.mode ? BOOT_MODES[options.mode] : undefined;
    if (device === 'uefi-http') {
      if (options.mode === 'legacy') throw new ProviderError(REDFISH, 'unsupported', 'UEFI HTTP boot needs UEFI mode, not legacy');
      if (!options.url) throw new ProviderError(REDFISH, 'protocol', 'uefi-http boot needs the URL the firmware should fetch (options.url)');
      wantedMode = 'UEFI';
    }
    const currentMode = text(current['BootSourceOverrideMode']);
    let modeToSend: string | undefined;
    if (wantedMode && wantedMode !== currentMode) {
      if (!quirks.overrideModeWritable) {
        // NOTE: see REDFISH_QUIRKS.hpe — iLO takes the boot mode from its BIOS settings only.
        throw new ProviderError(REDFISH, 'unsupported', `${path}: this BMC (${quirks.vendor}) cannot switch the boot mode to ${wantedMode} per override; change the BIOS boot mode`);
      }
      modeToSend = wantedMode;
    } else if (quirks.overrideModeAlwaysSent && (wantedMode ?? currentMode)) {
      // NOTE: see REDFISH_QUIRKS.supermicro — repeat the mode or it reverts to the default.
      modeToSend = wantedMode ?? currentMode;
    }

    const patch: Record<string, unknown> = {
      // NOTE: target and enablement always travel together: iLO rejects an enablement change
      // while the target is None (ironcore-dev/metal-operator #998).
      BootSourceOverrideTarget: target,
      BootSourceOverrideEnabled: enabled,
    };
    if (device === 'uefi-http') patch['HttpBootUri'] = options.url;
    if (modeToSend && quirks.overrideModeOwnPatch) {
      // NOTE: see REDFISH_QUIRKS.dell — the mode in a PATCH of its own, first.
      await this.client.patch(path, { Boot: { BootSourceOverrideMode: modeToSend } }, ctx, etag);
      await this.client.patch(path, { Boot: patch }, ctx);
    } else {
      if (modeToSend) patch['BootSourceOverrideMode'] = modeToSend;
      await this.client.patch(path, { Boot: patch }, ctx, etag);
    }

    // NOTE: some iDRAC firmwares answer 200 with the error in the body and leave the override
    // unchanged (community.general #5091); reading it back turns that into an error.
    // Target, enablement and mode are all read back: sushy-tools' libvirt driver stores `Once`
    // as `Continuous`, which would leave the machine network-booting after its deploy.
    const after = boot((await this.readSystem(ref, ctx)).system);
    const kept = { target: text(after['BootSourceOverrideTarget']), enabled: text(after['BootSourceOverrideEnabled']), mode: text(after['BootSourceOverrideMode']) };
    // A BMC that reports no mode at all has nothing to compare; one that reports a mode must report the one asked for.
    const modeDiffers = wantedMode !== undefined && kept.mode !== undefined && kept.mode !== wantedMode;
    if (kept.target !== target || kept.enabled !== enabled || modeDiffers) {
      const asked = [target, enabled, ...(wantedMode ? [wantedMode] : [])].join('/');
      const held = [kept.target ?? 'no target', kept.enabled ?? 'no enablement', ...(wantedMode ? [kept.mode ?? 'no mode'] : [])].join('/');
      throw new ProviderError(REDFISH, 'protocol', `${path}: the BMC accepted boot override ${asked} but kept ${held}`);
    }
  }

  // ---------------------------------------------------------------- virtual media

  /** CD/DVD-capable virtual media slots of a system, the System's own first, then its Managers'. */
  private async mediaSlots(system: RedfishResource, quirks: RedfishQuirks, ctx: ProviderContext): Promise<Array<{ path: string; slot: RedfishResource }>> {
    const collections: string[] = [];
    const own = odataId(system['VirtualMedia']);
    if (own) collections.push(own);
    // NOTE: virtual media hangs off the Manager on iDRAC before 6.00.02 and on iLO
    // (dell/iDRAC-Redfish-Scripting #24 and #265; HewlettPackard/ilo-ansible-collection #37),
    // off the System on iDRAC 6+/10 and newer XCC (quadsproject/badfish #578): try both.
    const managedBy = (system['Links'] as { ManagedBy?: unknown } | undefined)?.ManagedBy;
    if (Array.isArray(managedBy)) {
      for (const m of managedBy) {
        const managerPath = odataId(m);
        if (!managerPath) continue;
        const manager = (await this.client.get(managerPath, ctx)).resource;
        const vm = odataId(manager['VirtualMedia']);
        if (vm) collections.push(vm);
      }
    }
    const slots: Array<{ path: string; slot: RedfishResource }> = [];
    for (const collectionPath of collections) {
      const collection = (await this.client.get(collectionPath, ctx)).resource;
      for (const slotPath of members(collection)) {
        const slot = (await this.client.get(slotPath, ctx)).resource;
        const types = stringList(slot['MediaTypes']) ?? [];
        const id = text(slot['Id']) ?? slotPath;
        if (!types.some((t) => t === 'CD' || t === 'DVD')) continue;
        if (quirks.unusableMediaSlot(id)) continue; // NOTE: see REDFISH_QUIRKS.lenovo (RDOC slots).
        slots.push({ path: slotPath, slot });
      }
      if (slots.length > 0) break;
    }
    return slots;
  }

  private isInserted(slot: RedfishResource): boolean {
    return slot['Inserted'] === true || (slot['Inserted'] === undefined && text(slot['Image']) !== undefined);
  }

  async insertVirtualMedia(ref: string, url: string, ctx: ProviderContext): Promise<void> {
    const { system, path } = await this.readSystem(ref, ctx);
    const quirks = await this.quirks(system, ctx);
    const slots = await this.mediaSlots(system, quirks, ctx);
    if (slots.length === 0) throw new ProviderError(REDFISH, 'unsupported', `${path} has no virtual CD/DVD slot`);
    const same = slots.find((s) => this.isInserted(s.slot) && s.slot['Image'] === url);
    if (same) return;
    const chosen = slots.find((s) => !this.isInserted(s.slot)) ?? slots[0]!;
    if (this.isInserted(chosen.slot)) await this.eject(chosen, ctx);
    const insert = (chosen.slot['Actions'] as Record<string, unknown> | undefined)?.['#VirtualMedia.InsertMedia'] as Record<string, unknown> | undefined;
    const insertTarget = text(insert?.['target']);
    if (insertTarget) {
      await this.client.post(insertTarget, { Image: url, Inserted: true, WriteProtected: true }, ctx);
    } else {
      // NOTE: Lenovo XCC (and the DMTF public mockup) expose no InsertMedia action; the image
      // is mounted by PATCHing Image and Inserted (stmcginnis/gofish #529, #530).
      await this.client.patch(chosen.path, { Image: url, Inserted: true, WriteProtected: true }, ctx);
    }
    // A BMC may accept the insert and leave the slot empty (a URL it cannot fetch, a slot it
    // will not mount): the slot is read back, so that a machine is not powered on to boot from nothing.
    const after = (await this.client.get(chosen.path, ctx)).resource;
    const image = text(after['Image']);
    if (!this.isInserted(after) || (image !== undefined && image !== url)) {
      throw new ProviderError(REDFISH, 'protocol', `${chosen.path}: the BMC accepted virtual media ${url} but kept ${this.isInserted(after) ? (image ?? 'another image') : 'the slot empty'}`);
    }
  }

  private async eject(slot: { path: string; slot: RedfishResource }, ctx: ProviderContext): Promise<void> {
    const eject = (slot.slot['Actions'] as Record<string, unknown> | undefined)?.['#VirtualMedia.EjectMedia'] as Record<string, unknown> | undefined;
    const ejectTarget = text(eject?.['target']);
    if (ejectTarget) await this.client.post(ejectTarget, {}, ctx);
    // NOTE: see insertVirtualMedia — PATCH where the action is absent (XCC, DMTF mockup).
    else await this.client.patch(slot.path, { Image: null, Inserted: false }, ctx);
  }

  async ejectVirtualMedia(ref: string, ctx: ProviderContext): Promise<void> {
    const { system } = await this.readSystem(ref, ctx);
    const quirks = await this.quirks(system, ctx);
    for (const slot of await this.mediaSlots(system, quirks, ctx)) {
      if (this.isInserted(slot.slot)) await this.eject(slot, ctx);
    }
  }

  // ---------------------------------------------------------------- inventory

  async listSystems(ctx: ProviderContext): Promise<DiscoveredSystem[]> {
    const collection = (await this.client.get('/redfish/v1/Systems', ctx)).resource;
    const out: DiscoveredSystem[] = [];
    for (const path of members(collection)) {
      const system = (await this.client.get(path, ctx)).resource;
      const found: DiscoveredSystem = { ref: odataId(system) ?? path, macs: await this.macs(system, ctx), powerState: this.powerStateOf(system) };
      const name = text(system['Name']);
      const uuid = text(system['UUID']);
      const serial = text(system['SerialNumber']);
      const manufacturer = text(system['Manufacturer']);
      const model = text(system['Model']);
      if (name) found.name = name;
      if (uuid) found.systemUuid = uuid.toLowerCase();
      if (serial) found.serial = serial;
      if (manufacturer) found.manufacturer = manufacturer;
      if (model) found.productName = model;
      out.push(found);
    }
    return out;
  }

  private async macs(system: RedfishResource, ctx: ProviderContext): Promise<string[]> {
    const collectionPath = odataId(system['EthernetInterfaces']);
    if (!collectionPath) return [];
    const macs = new Set<string>();
    for (const nicPath of members((await this.client.get(collectionPath, ctx)).resource)) {
      const nic = (await this.client.get(nicPath, ctx)).resource;
      // The host side of the BMC's USB/host interface is not a network the machine boots from.
      const links = nic['Links'] as Record<string, unknown> | undefined;
      if (links && 'HostInterface' in links) continue;
      const raw = text(nic['MACAddress']) ?? text(nic['PermanentMACAddress']);
      const mac = raw ? normalizeMac(raw) : null;
      if (mac && !isUselessMac(mac)) macs.add(mac);
    }
    return [...macs];
  }
}

export function createRedfishProvider(endpoint: Endpoint): RedfishProvider {
  return new RedfishProvider(endpoint);
}
