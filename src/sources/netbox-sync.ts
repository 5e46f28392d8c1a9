import type { Config } from '../config/schema.js';
import { PlinthError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { MACHINE_NAME_PATTERN } from '../core/ids.js';
import { normalizeIdentity } from '../inventory/identity.js';
import type { Actor } from '../inventory/machine.js';
import type { InventoryService } from '../inventory/service.js';
import { importError, sameValueTwice, type ImportEntry } from './import-document.js';
import type { ImportOutcome, MachineImporter } from './machine-import.js';
import { NetboxClient, type NetboxDevice } from './netbox-client.js';

export interface NetboxSyncOutcome {
  /** Devices NetBox listed for the filter. */
  devices: number;
  /** Devices left out: no usable name and no identity. */
  skipped: Array<{ device: number; name: string | null; reason: string }>;
  import: ImportOutcome;
  /** Devices whose custom fields were written (null: writeBack is off or a dry run). */
  writtenBack: string[] | null;
}

/** The custom fields write-back sets; never read back as tags. */
export const WRITE_BACK_FIELDS = { state: 'plinth_state', serial: 'plinth_serial' } as const;

const NAME = new RegExp(MACHINE_NAME_PATTERN);
const TAG_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;

/** A device name as a hostname label: `R1-Srv 03.dc.example` → `r1-srv-03`; null when nothing usable is left. */
export function machineNameOf(deviceName: string | null): string | null {
  if (!deviceName) return null;
  const label = deviceName.split('.')[0]!.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
  return NAME.test(label) ? label : null;
}

/** A device as an import entry: name, serial, asset tag, MACs; site, role, primary IP and custom fields as tags. */
export function deviceEntry(d: NetboxDevice, macs: string[]): ImportEntry {
  const tags: Record<string, string> = { 'netbox.id': String(d.id) };
  if (d.site?.slug) tags['netbox.site'] = d.site.slug;
  if (d.role?.slug) tags['netbox.role'] = d.role.slug;
  if (d.primary_ip?.address) tags['netbox.primary_ip'] = d.primary_ip.address.split('/')[0]!;
  const ours: string[] = Object.values(WRITE_BACK_FIELDS);
  for (const [k, v] of Object.entries(d.custom_fields ?? {})) {
    if (ours.includes(k) || v === null || v === '' || !TAG_KEY.test(k)) continue;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') tags[k] = String(v).slice(0, 255);
  }
  // What NetBox holds is what people typed: placeholders and malformed MACs are dropped, not refused.
  const identity = normalizeIdentity({ serial: d.serial || null, assetTag: d.asset_tag, macs });
  return { path: `device ${d.id}${d.name ? ` (${d.name})` : ''}`, name: machineNameOf(d.name), identity, tags, bmc: null, appliance: null };
}

/**
 * NetBox as the source of truth (`plinth netbox sync`, and every `netbox.interval`): the
 * devices of the filter become machines through the same plan as a static import (matched
 * by name or identity, created or updated, one transaction, idempotent); with `writeBack`,
 * each device's custom fields then get the machine's provision state and serial.
 */
export class NetboxSync {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(
    private readonly d: {
      importer: MachineImporter;
      inventory: InventoryService;
      config: Config['netbox'];
      intervalMs: number;
      log: Logger;
    },
  ) {}

  async sync(o: { dryRun: boolean; actor: Actor }): Promise<NetboxSyncOutcome> {
    const c = this.d.config;
    if (!c.url) throw new PlinthError('unsupported', 'no NetBox is configured: set netbox.url and netbox.token (docs/inventory-sources.md)');
    const client = new NetboxClient({ url: c.url, token: c.token, insecure: c.insecure });
    try {
      const devices = await client.devices({ site: c.filter.site, role: c.filter.role, tag: c.filter.tag });
      const macs = await client.macsByDevice(devices.map((d) => d.id));
      const entries: ImportEntry[] = [];
      const byPath = new Map<string, NetboxDevice>();
      const skipped: NetboxSyncOutcome['skipped'] = [];
      for (const d of devices) {
        const e = deviceEntry(d, macs.get(d.id) ?? []);
        const { identity } = e;
        if (!e.name && !identity.serial && !identity.assetTag && identity.macs.length === 0) {
          skipped.push({ device: d.id, name: d.name, reason: 'no name usable as a hostname and no serial, asset tag or MAC address' });
          continue;
        }
        entries.push(e);
        byPath.set(e.path, d);
      }
      const twice = sameValueTwice(entries);
      if (twice.length) throw importError(twice);
      const outcome = await this.d.importer.importEntries('netbox', entries, { ...o, source: `NetBox ${new URL(c.url).host}` });
      let writtenBack: string[] | null = null;
      if (c.writeBack && !o.dryRun) {
        writtenBack = [];
        for (const item of outcome.items) {
          const device = byPath.get(item.entry);
          if (!device || !item.machine) continue;
          const m = await this.d.inventory.get(item.machine);
          const want: Record<string, string> = { [WRITE_BACK_FIELDS.state]: m.state };
          if (m.identity.serial) want[WRITE_BACK_FIELDS.serial] = m.identity.serial;
          const has = device.custom_fields ?? {};
          if (Object.entries(want).every(([k, v]) => has[k] === v)) continue;
          await client.setCustomFields(device.id, want);
          writtenBack.push(item.entry);
        }
      }
      return { devices: devices.length, skipped, import: outcome, writtenBack };
    } finally {
      await client.close();
    }
  }

  /** Syncs every `netbox.interval` (jittered ±20%) when NetBox is configured and the interval is not 0. */
  start(actor: Actor): void {
    if (!this.d.config.url || this.d.intervalMs <= 0 || this.timer) return;
    const next = () => {
      this.timer = setTimeout(() => {
        this.running = this.sync({ dryRun: false, actor })
          .then((r) => this.d.log.info({ devices: r.devices, created: r.import.created, updated: r.import.updated }, 'netbox sync'))
          .catch((e: unknown) => this.d.log.warn({ err: (e as Error).message }, 'netbox sync failed'))
          .finally(() => {
            this.running = null;
            if (this.timer) next();
          });
      }, this.d.intervalMs * (0.8 + Math.random() * 0.4));
      this.timer.unref();
    };
    next();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
