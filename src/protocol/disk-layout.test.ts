import { describe, expect, it } from 'vitest';
import { checkDiskLayout, RAID1_EXAMPLE, type DiskLayout } from './disk-layout.js';

const clone = (l: DiskLayout): DiskLayout => structuredClone(l);

describe('checkDiskLayout', () => {
  it('accepts root on RAID1 over two disks, a single disk, and LVM on an array', () => {
    expect(checkDiskLayout(RAID1_EXAMPLE)).toBeNull();
    expect(checkDiskLayout({ disks: [{ partitions: [{ id: 'bios', sizeMiB: 1, use: 'bios-boot' }, { id: 'root', use: 'fs', fs: 'ext4', mount: '/' }] }] })).toBeNull();
    expect(
      checkDiskLayout({
        disks: [{ partitions: [{ id: 'a', use: 'raid' }] }, { partitions: [{ id: 'b', use: 'raid' }] }],
        raid: [{ id: 'md', level: 1, members: ['a', 'b'], use: 'lvm' }],
        volumeGroups: [{ id: 'vg', pvs: ['md'], volumes: [{ id: 'root', sizeMiB: 4096, use: 'fs', fs: 'xfs', mount: '/' }, { id: 'swap', use: 'swap' }] }],
      }),
    ).toBeNull();
  });

  it('names the field of each problem', () => {
    const cases: [(l: DiskLayout) => void, string, RegExp][] = [
      [(l) => delete l.disks[0]!.partitions[1]!.sizeMiB, 'diskLayout.disks[0].partitions[1].sizeMiB', /only the last/],
      [(l) => (l.raid![0]!.members[1] = 'nope'), 'diskLayout.raid[0].members[1]', /not a partition/],
      [(l) => (l.raid![0]!.members[1] = 'roota'), 'diskLayout.raid[0].members[1]', /already taken/],
      [(l) => (l.raid![0]!.members[1] = 'efib'), 'diskLayout.raid[0].members[1]', /has use efi, not raid/],
      [(l) => (l.raid![0]!.members = ['roota']), 'diskLayout.raid[0].members', /must/],
      [(l) => (l.disks[1]!.partitions[2]!.id = 'roota'), 'diskLayout.disks[1].partitions[2].id', /already the id of disks\[0\].partitions\[2\]/],
      [(l) => (l.raid![0]!.mount = '/boot/efi2'), 'diskLayout.raid[0].mount', /already mounted/],
      [(l) => delete l.raid![0]!.mount, 'diskLayout.disks', /no file system is mounted at \//],
      [(l) => delete l.raid![0]!.fs, 'diskLayout.raid[0].fs', /is required/],
      [(l) => (l.raid![0]!.fs = 'vfat'), 'diskLayout.raid[0].fs', /cannot be the root/],
      [(l) => (l.raid![0]!.level = 5 as 1), 'diskLayout.raid[0].members', /RAID5 needs at least 3 members/],
      [(l) => (l.raid![0]!.mount = 'relative'), 'diskLayout.raid[0].mount', /pattern/],
      [(l) => ((l.disks[0]! as Record<string, unknown>)['extra'] = 1), 'diskLayout.disks[0].extra', /is not a known field/],
      [(l) => (l.disks[0]!.partitions[0]!.fs = 'ext4'), 'diskLayout.disks[0].partitions[0].fs', /not taken by use bios-boot/],
      [(l) => (l.disks[0]!.device = l.disks[1]!.device = 'vda'), 'diskLayout.disks[1].device', /named twice/],
      [(l) => (l.raid = []), 'diskLayout.disks[0].partitions[2]', /nothing takes it/],
    ];
    for (const [change, field, message] of cases) {
      const layout = clone(RAID1_EXAMPLE);
      change(layout);
      const p = checkDiskLayout(layout);
      expect(p, `${field} ${message}`).not.toBeNull();
      expect(p!.field, p!.message).toBe(field);
      expect(p!.message).toMatch(message);
    }
  });

  it('takes the name of the field that holds the layout', () => {
    expect(checkDiskLayout({ disks: [] }, 'params.diskLayout')?.field).toBe('params.diskLayout.disks');
  });
});
