/**
 * Proxmox VE VM configuration values (`GET /nodes/{node}/qemu/{vmid}/config`): property
 * strings such as `net0: virtio=BC:24:11:2F:3A:01,bridge=vmbr0`, `smbios1: uuid=…` and the
 * boot order in both its current form (`order=scsi0;ide2;net0`, PVE ≥ 6.2) and the legacy
 * one (`boot: cdn` + `bootdisk: scsi0`).
 */
import { isUselessMac, normalizeMac } from '../../core/mac.js';
import type { BootDevice, BootMode } from '../types.js';

export type VmConfig = Record<string, unknown>;

/** `a=1,b=2` (optionally a leading positional value) → entries in order. */
export function parsePropertyString(value: string): Array<[string | undefined, string]> {
  return value
    .split(',')
    .filter((p) => p !== '')
    .map((part) => {
      const eq = part.indexOf('=');
      return eq < 0 ? [undefined, part] : [part.slice(0, eq), part.slice(eq + 1)];
    });
}

const DISK_KEY = /^(ide|sata|scsi|virtio)\d+$/;
const NET_KEY = /^net\d+$/;

function byIndex(a: string, b: string): number {
  const n = (k: string): number => Number(/\d+$/.exec(k)?.[0] ?? 0);
  return a.replace(/\d+$/, '').localeCompare(b.replace(/\d+$/, '')) || n(a) - n(b);
}

/** The MAC address of a `netN` value (the model key's value: `virtio=…`, `e1000=…`, or `macaddr=…`). */
export function netMac(value: string): string | undefined {
  for (const [key, v] of parsePropertyString(value)) {
    if (key === 'bridge' || key === 'tag' || key === 'firewall') continue;
    const mac = normalizeMac(v);
    if (mac) return mac;
  }
  return undefined;
}

export function vmMacs(config: VmConfig): string[] {
  const macs: string[] = [];
  for (const key of Object.keys(config).filter((k) => NET_KEY.test(k)).sort(byIndex)) {
    const mac = typeof config[key] === 'string' ? netMac(config[key]) : undefined;
    if (mac && !isUselessMac(mac) && !macs.includes(mac)) macs.push(mac);
  }
  return macs;
}

/** The SMBIOS system UUID from `smbios1`. */
export function smbiosUuid(config: VmConfig): string | undefined {
  const smbios = config['smbios1'];
  if (typeof smbios !== 'string') return undefined;
  const uuid = parsePropertyString(smbios).find(([k]) => k === 'uuid')?.[1];
  return uuid && /^[0-9a-f-]{36}$/i.test(uuid) ? uuid.toLowerCase() : undefined;
}

export type DriveKind = 'disk' | 'cdrom' | 'network';

/** Bootable devices of a VM: disks, CD drives and NICs, by config key. */
export function bootableDevices(config: VmConfig): Array<{ key: string; kind: DriveKind }> {
  const out: Array<{ key: string; kind: DriveKind }> = [];
  for (const key of Object.keys(config).sort(byIndex)) {
    const value = config[key];
    if (typeof value !== 'string') continue;
    if (NET_KEY.test(key)) out.push({ key, kind: 'network' });
    else if (DISK_KEY.test(key)) out.push({ key, kind: parsePropertyString(value).some(([k, v]) => k === 'media' && v === 'cdrom') ? 'cdrom' : 'disk' });
  }
  return out;
}

/** The boot order as device keys, from either boot syntax. */
export function bootOrder(config: VmConfig): string[] {
  const boot = typeof config['boot'] === 'string' ? config['boot'] : '';
  const order = parsePropertyString(boot).find(([k]) => k === 'order')?.[1];
  if (order !== undefined) return order.split(';').filter(Boolean);
  // Legacy letters: c = the `bootdisk`, d = the first CD drive, n = the NICs.
  if (/^[acdn]+$/.test(boot)) {
    const devices = bootableDevices(config);
    const out: string[] = [];
    for (const letter of boot) {
      if (letter === 'c' && typeof config['bootdisk'] === 'string') out.push(config['bootdisk']);
      if (letter === 'd') out.push(...devices.filter((d) => d.kind === 'cdrom').slice(0, 1).map((d) => d.key));
      if (letter === 'n') out.push(...devices.filter((d) => d.kind === 'network').map((d) => d.key));
    }
    return out;
  }
  return [];
}

const KIND_OF_DEVICE: Partial<Record<BootDevice, DriveKind>> = { pxe: 'network', disk: 'disk', cd: 'cdrom' };

/** The device booted first, in Plinth's words. */
export function firstBootDevice(config: VmConfig): BootDevice | undefined {
  const first = bootOrder(config)[0];
  const kind = bootableDevices(config).find((d) => d.key === first)?.kind;
  return kind === 'network' ? 'pxe' : kind === 'disk' ? 'disk' : kind === 'cdrom' ? 'cd' : undefined;
}

/**
 * The `boot` value that puts a device of the wanted kind first and keeps the previous order
 * behind it. Undefined when the VM has no such device.
 */
export function bootValueFor(config: VmConfig, device: BootDevice): string | undefined {
  const kind = KIND_OF_DEVICE[device];
  if (!kind) return undefined;
  const order = bootOrder(config);
  const candidates = bootableDevices(config).filter((d) => d.kind === kind);
  if (candidates.length === 0) return undefined;
  const first = candidates.find((c) => order.includes(c.key))?.key ?? candidates[0]!.key;
  return `order=${[first, ...order.filter((k) => k !== first)].join(';')}`;
}

/** OVMF is UEFI; SeaBIOS (the default) is legacy BIOS. */
export function firmwareOf(config: VmConfig): BootMode {
  return config['bios'] === 'ovmf' ? 'uefi' : 'legacy';
}

/** The first CD drive's key and current volume (`none` when empty). */
export function cdDrive(config: VmConfig): { key: string; volume: string } | undefined {
  const drive = bootableDevices(config).find((d) => d.kind === 'cdrom');
  if (!drive) return undefined;
  const [first] = parsePropertyString(String(config[drive.key]));
  return { key: drive.key, volume: first?.[0] === undefined ? first![1] : 'none' };
}
