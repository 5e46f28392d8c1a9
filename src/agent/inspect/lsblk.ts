/**
 * Block devices from lsblk's JSON output. The invocation is fixed here so that the parser
 * and the command cannot drift apart: whole devices only (-d), sizes in bytes (-b).
 */
export const LSBLK_ARGS: readonly string[] = ['-J', '-b', '-d', '-o', 'NAME,SIZE,MODEL,VENDOR,REV,SERIAL,WWN,ROTA,TYPE,TRAN,RM,RO'];

export interface BlockDevice {
  name: string;
  sizeBytes: number;
  model: string | null;
  vendor: string | null;
  revision: string | null;
  serial: string | null;
  wwn: string | null;
  rotational: boolean;
  /** lsblk's TYPE: "disk", "rom", "loop", "part", "lvm", "raid1"... */
  type: string;
  /** "sata", "sas", "nvme", "usb"... null when unknown (no udev in the installer). */
  transport: string | null;
  removable: boolean;
  readOnly: boolean;
}

// NOTE: lsblk before util-linux 2.33 writes every JSON value as a string ("1", "0", "500107862016").
function asBoolean(value: unknown): boolean {
  return value === true || value === 1 || value === '1';
}

function asNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^\d+$/.test(value)) return Number(value);
  return 0;
}

// NOTE: SCSI inquiry strings are space-padded to a fixed width ("ST300MM0008     ", "SEAGATE ").
function asText(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const v = value.trim();
  return v === '' ? null : v;
}

/** Every device lsblk listed, normalised. Throws on output that is not lsblk JSON. */
export function parseLsblk(json: string): BlockDevice[] {
  const parsed = JSON.parse(json) as { blockdevices?: unknown };
  if (!parsed || !Array.isArray(parsed.blockdevices)) throw new Error('lsblk output has no "blockdevices" array');
  return parsed.blockdevices.map((raw: Record<string, unknown>) => ({
    name: String(raw['name'] ?? ''),
    sizeBytes: asNumber(raw['size']),
    model: asText(raw['model']),
    vendor: asText(raw['vendor']),
    revision: asText(raw['rev']),
    serial: asText(raw['serial']),
    wwn: asText(raw['wwn']),
    rotational: asBoolean(raw['rota']),
    type: String(raw['type'] ?? ''),
    transport: asText(raw['tran']),
    removable: asBoolean(raw['rm']),
    readOnly: asBoolean(raw['ro']),
  }));
}

// NOTE: zram and some ram-disk drivers report TYPE "disk"; floppies too. Names are the only tell.
const NOT_A_DRIVE = /^(loop|ram|zram|nbd|fd)\d/;

/**
 * True for a drive an OS could be installed on: TYPE disk, writable, not empty, not a
 * kernel pseudo-device. Optical drives (TYPE rom) and read-only media (write-protected
 * cards, BMC virtual media) are left out. Removable disks (USB sticks, SD cards,
 * hypervisor "removable" disks) are kept, as eDeploy's hardware-detect kept them: they are
 * real drives and specs may count them; the hw list marks them `removable`.
 */
export function isInstallableDisk(device: BlockDevice): boolean {
  return device.type === 'disk' && !device.readOnly && device.sizeBytes > 0 && !NOT_A_DRIVE.test(device.name);
}
