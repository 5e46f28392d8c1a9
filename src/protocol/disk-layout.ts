import { Type, type Static } from 'typebox';
import Value from 'typebox/value';

/**
 * A disk layout: the partitions of each disk, the software RAID arrays (mdadm) and LVM volume
 * groups built on them, and the file systems and mount points of the installed system. A
 * profile's `deploy.diskLayout` or a deploy request's `diskLayout` carries one; the API checks
 * it with this schema and `checkDiskLayout` (400 naming the field), the agent checks it again
 * before it touches a disk and applies it with sgdisk, mdadm, LVM and mkfs, then writes the
 * installed system's fstab and mdadm.conf from what those tools made.
 *
 * Every block device the layout makes has an `id`: a partition, an array, a logical volume.
 * Arrays name partitions as members; a volume group names partitions or arrays as its
 * physical volumes. A device's `use` says what goes on it: a file system (`fs`, with `fs`
 * and usually `mount`), `swap`, a RAID member (`raid`), an LVM physical volume (`lvm`), the
 * BIOS boot partition GRUB needs on a GPT disk (`bios-boot`) or the EFI system partition
 * (`efi`, vfat, mounted at /boot/efi unless said otherwise).
 */
const Strict = { additionalProperties: false } as const;

export const DISK_LAYOUT_ID_PATTERN = '^[a-z][a-z0-9_]{0,23}$';
const Id = (description: string) => Type.String({ pattern: DISK_LAYOUT_ID_PATTERN, description });
export const FILESYSTEMS = ['ext4', 'xfs', 'vfat', 'btrfs'] as const;
export type Filesystem = (typeof FILESYSTEMS)[number];
export const PARTITION_USES = ['fs', 'swap', 'raid', 'lvm', 'bios-boot', 'efi'] as const;
export type PartitionUse = (typeof PARTITION_USES)[number];
/** What an array or a logical volume may carry (not the disk-only uses). */
export const VOLUME_USES = ['fs', 'swap', 'lvm'] as const;
export const RAID_LEVELS = [0, 1, 5, 6, 10] as const;
/** The fewest members mdadm takes for each level. */
export const RAID_MIN_MEMBERS: Record<(typeof RAID_LEVELS)[number], number> = { 0: 2, 1: 2, 5: 3, 6: 4, 10: 2 };
/** An absolute mount point of plain path segments. */
export const MOUNT_POINT_PATTERN = '^/([A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*)?$';

const Content = {
  fs: Type.Optional(Type.Enum(FILESYSTEMS, { description: 'file system to make (use fs, efi)' })),
  mount: Type.Optional(Type.String({ maxLength: 256, pattern: MOUNT_POINT_PATTERN, description: 'where the installed system mounts it' })),
  /** File system label (mkfs -L / -n). */
  label: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,11}$', description: 'file system label (at most 11 characters: vfat allows no more)' })),
};
const Size = Type.Optional(Type.Integer({ minimum: 1, maximum: 1 << 30, description: 'size in MiB; left out: the rest (the last partition of a disk, the last volume of a group)' }));

export const LayoutPartitionSchema = Type.Object({ id: Id('partition id, named by arrays and volume groups'), sizeMiB: Size, use: Type.Enum(PARTITION_USES), ...Content }, Strict);
export const LayoutDiskSchema = Type.Object(
  {
    /** The kernel name of the disk (vda, sdb, nvme0n1); left out: the next disk, smallest first. */
    device: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9]{1,31}$', description: 'kernel name of the disk; left out: the next unnamed disk, smallest first' })),
    partitions: Type.Array(LayoutPartitionSchema, { minItems: 1, maxItems: 64 }),
  },
  Strict,
);
export const LayoutRaidSchema = Type.Object(
  {
    id: Id('array id; the array is /dev/md/ID'),
    level: Type.Union([Type.Literal(0), Type.Literal(1), Type.Literal(5), Type.Literal(6), Type.Literal(10)], { description: 'mdadm RAID level (one of RAID_LEVELS)' }),
    members: Type.Array(Type.String({ pattern: DISK_LAYOUT_ID_PATTERN }), { minItems: 2, maxItems: 32, description: 'partition ids (use raid)' }),
    use: Type.Enum(VOLUME_USES),
    ...Content,
  },
  Strict,
);
export const LayoutVolumeSchema = Type.Object({ id: Id('logical volume name'), sizeMiB: Size, use: Type.Enum(['fs', 'swap'] as const), ...Content }, Strict);
export const LayoutVolumeGroupSchema = Type.Object(
  {
    id: Id('volume group name'),
    pvs: Type.Array(Type.String({ pattern: DISK_LAYOUT_ID_PATTERN }), { minItems: 1, maxItems: 32, description: 'partition or array ids (use lvm)' }),
    volumes: Type.Array(LayoutVolumeSchema, { minItems: 1, maxItems: 64 }),
  },
  Strict,
);

export const DiskLayoutSchema = Type.Object(
  {
    disks: Type.Array(LayoutDiskSchema, { minItems: 1, maxItems: 16 }),
    raid: Type.Optional(Type.Array(LayoutRaidSchema, { maxItems: 16 })),
    volumeGroups: Type.Optional(Type.Array(LayoutVolumeGroupSchema, { maxItems: 8 })),
  },
  { ...Strict, description: 'partitions, software RAID, LVM, file systems and mount points of the installed system' },
);
export type DiskLayout = Static<typeof DiskLayoutSchema>;

export interface LayoutProblem {
  /** The field, as the API names fields: `diskLayout.raid[0].members[1]`. */
  field: string;
  message: string;
}

/** A device the layout makes and what goes on it. */
interface Made {
  field: string;
  use: string;
  fs?: Filesystem | undefined;
  mount?: string | undefined;
}

/**
 * What the schema cannot say: ids unique, members and physical volumes that exist, are meant
 * for it (`use`) and used once, sizes left out only last, one root file system, no mount point
 * twice, a file system wherever one is to be mounted. The first problem, or null. `prefix` is
 * the name of the field that holds the layout.
 */
export function checkDiskLayout(raw: unknown, prefix = 'diskLayout'): LayoutProblem | null {
  const schemaProblem = Value.Errors(DiskLayoutSchema, raw)[0];
  if (schemaProblem) {
    const path = schemaProblem.instancePath
      .split('/')
      .slice(1)
      .reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : `${acc}.${seg}`), prefix);
    return { field: path, message: schemaProblem.message === 'schema is false' ? 'is not a known field' : schemaProblem.message };
  }
  const layout = raw as DiskLayout;
  const made = new Map<string, Made>();
  const problem = (field: string, message: string): LayoutProblem => ({ field: `${prefix}.${field}`, message });
  const add = (id: string, m: Made): LayoutProblem | null => {
    if (made.has(id)) return problem(`${m.field}.id`, `'${id}' is already the id of ${made.get(id)!.field}`);
    made.set(id, m);
    return null;
  };
  const named = new Set<string>();
  for (const [d, disk] of layout.disks.entries()) {
    if (disk.device) {
      if (named.has(disk.device)) return problem(`disks[${d}].device`, `${disk.device} is named twice`);
      named.add(disk.device);
    }
    for (const [p, part] of disk.partitions.entries()) {
      const field = `disks[${d}].partitions[${p}]`;
      if (part.sizeMiB === undefined && p !== disk.partitions.length - 1) return problem(`${field}.sizeMiB`, 'is required (only the last partition of a disk takes the rest)');
      const clash = add(part.id, { field, use: part.use, fs: part.use === 'efi' ? (part.fs ?? 'vfat') : part.fs, mount: part.use === 'efi' ? (part.mount ?? '/boot/efi') : part.mount });
      if (clash) return clash;
      if (part.use === 'efi' && part.fs && part.fs !== 'vfat') return problem(`${field}.fs`, 'must be vfat for an EFI system partition');
    }
  }
  const takenBy = new Map<string, string>();
  const take = (id: string, field: string, want: string): LayoutProblem | null => {
    const m = made.get(id);
    if (!m) return problem(field, `'${id}' is not a partition${want === 'lvm' ? ' or array' : ''} of this layout`);
    if (m.use !== want) return problem(field, `'${id}' (${m.field}) has use ${m.use}, not ${want}`);
    if (takenBy.has(id)) return problem(field, `'${id}' is already taken by ${takenBy.get(id)}`);
    takenBy.set(id, field);
    return null;
  };
  for (const [r, raid] of (layout.raid ?? []).entries()) {
    const field = `raid[${r}]`;
    for (const [i, member] of raid.members.entries()) {
      const p = take(member, `${field}.members[${i}]`, 'raid');
      if (p) return p;
      if (made.get(member)!.field.startsWith('raid')) return problem(`${field}.members[${i}]`, `'${member}' is an array; members are partitions`);
    }
    const min = RAID_MIN_MEMBERS[raid.level];
    if (raid.members.length < min) return problem(`${field}.members`, `RAID${raid.level} needs at least ${min} members`);
    const clash = add(raid.id, { field, use: raid.use, fs: raid.fs, mount: raid.mount });
    if (clash) return clash;
  }
  for (const [g, vg] of (layout.volumeGroups ?? []).entries()) {
    const field = `volumeGroups[${g}]`;
    for (const [i, pv] of vg.pvs.entries()) {
      const p = take(pv, `${field}.pvs[${i}]`, 'lvm');
      if (p) return p;
    }
    const clash = add(vg.id, { field, use: 'volume-group' });
    if (clash) return clash;
    for (const [v, lv] of vg.volumes.entries()) {
      const lvField = `${field}.volumes[${v}]`;
      if (lv.sizeMiB === undefined && v !== vg.volumes.length - 1) return problem(`${lvField}.sizeMiB`, 'is required (only the last volume of a group takes the rest)');
      const c = add(lv.id, { field: lvField, use: lv.use, fs: lv.fs, mount: lv.mount });
      if (c) return c;
    }
  }
  const mounts = new Map<string, string>();
  for (const [id, m] of made) {
    if ((m.use === 'raid' || m.use === 'lvm') && !takenBy.has(id)) return problem(m.field, `'${id}' has use ${m.use} and nothing takes it`);
    if ((m.use === 'fs' || m.use === 'efi') && !m.fs) return problem(`${m.field}.fs`, `is required (use ${m.use})`);
    if (m.use !== 'fs' && m.use !== 'efi' && (m.fs || m.mount)) return problem(`${m.field}.${m.fs ? 'fs' : 'mount'}`, `is not taken by use ${m.use}`);
    if (m.mount) {
      if (mounts.has(m.mount)) return problem(`${m.field}.mount`, `${m.mount} is already mounted from ${mounts.get(m.mount)}`);
      mounts.set(m.mount, m.field);
      if (m.mount === '/' && m.fs === 'vfat') return problem(`${m.field}.fs`, 'vfat cannot be the root file system');
    }
  }
  if (!mounts.has('/')) return problem('disks', 'no file system is mounted at /');
  return null;
}

/** The layout most servers with two disks want: BIOS boot and EFI partitions on each, root on RAID1 over both. */
export const RAID1_EXAMPLE: DiskLayout = {
  disks: [
    { partitions: [{ id: 'biosa', sizeMiB: 1, use: 'bios-boot' }, { id: 'efia', sizeMiB: 64, use: 'efi' }, { id: 'roota', use: 'raid' }] },
    { partitions: [{ id: 'biosb', sizeMiB: 1, use: 'bios-boot' }, { id: 'efib', sizeMiB: 64, use: 'efi', mount: '/boot/efi2' }, { id: 'rootb', use: 'raid' }] },
  ],
  raid: [{ id: 'root', level: 1, members: ['roota', 'rootb'], use: 'fs', fs: 'ext4', mount: '/' }],
};

/** A tree deploy's layout when neither the request nor the profile gives one: one disk (the smallest), BIOS boot, EFI and an ext4 root. */
export const DEFAULT_TREE_LAYOUT: DiskLayout = {
  disks: [{ partitions: [{ id: 'bios', sizeMiB: 1, use: 'bios-boot' }, { id: 'efi', sizeMiB: 100, use: 'efi' }, { id: 'root', use: 'fs', fs: 'ext4', mount: '/' }] }],
};
