import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StepError } from './errors.js';
import { growRoot } from './grow-root.js';
import { buildTestImage, copyOnto, LoopDevices, MiB, must, sh, type TestImage } from './test-fixtures.js';

const SECTOR = 512;

/** What sfdisk reads from the device: the table's last usable sector and each partition's extent. */
async function table(device: string) {
  const dump = JSON.parse(await must('sfdisk', ['--json', device])) as {
    partitiontable: { label: string; lastlba: number; partitions: { node: string; start: number; size: number; name?: string }[] };
  };
  return dump.partitiontable;
}

async function ext4Size(partition: string): Promise<number> {
  const out = await must('dumpe2fs', ['-h', partition]);
  return Number(/^Block count:\s+(\d+)/m.exec(out)![1]) * Number(/^Block size:\s+(\d+)/m.exec(out)![1]);
}

/** Growing a small image written to a larger disk: GPT, partition and ext4 reach the disk's end. */
describe('growRoot', () => {
  const loops = new LoopDevices();
  let image: TestImage;
  beforeAll(async () => {
    image = await buildTestImage(loops);
  });
  afterAll(async () => loops.detachAll());

  it('moves the backup GPT to the end and grows the last partition and its ext4 to the end of the disk', async () => {
    const diskBytes = 96 * MiB;
    const { device, name } = await loops.attach(diskBytes);
    await copyOnto(loops, image.path, device);
    const before = await table(device);
    expect(before.lastlba).toBe(image.sizeBytes / SECTOR - 34);

    const lines: string[] = [];
    const result = await growRoot(device, { log: (l) => lines.push(l) });

    const after = await table(device);
    const lastSector = diskBytes / SECTOR - 1;
    // Last usable sector = disk end minus the backup GPT (header + 32 sectors of entries).
    expect(after.lastlba).toBe(lastSector - 33);
    const root = after.partitions.find((p) => p.node === `${device}p3`)!;
    expect(root.start + root.size - 1).toBe(after.lastlba);
    // sgdisk's own check finds the backup header at the disk's end and nothing wrong.
    const verify = await must('sgdisk', ['--verify', device]);
    expect(verify).toMatch(/No problems found/);
    // The kernel sees the new size; the filesystem fills the partition (to its 4 KiB blocks).
    expect(Number(await must('blockdev', ['--getsize64', `${device}p3`]))).toBe(root.size * SECTOR);
    const fsBytes = await ext4Size(`${device}p3`);
    expect(root.size * SECTOR - fsBytes).toBeLessThan(4096);
    expect((await sh('e2fsck', ['-f', '-n', `${device}p3`])).code).toBe(0);
    // The files survived.
    expect(await must('debugfs', ['-R', 'cat /hello.txt', `${device}p3`])).toBe(image.files['hello.txt']);
    expect(result).toMatchObject({
      disk: name,
      partition: `${device}p3`,
      partitionNumber: 3,
      filesystem: 'ext4',
      isRoot: true,
      partitionBytes: { after: root.size * SECTOR },
      filesystemBytes: { after: fsBytes },
    });
    expect(result.partitionBytes.before).toBe(before.partitions[2]!.size * SECTOR);
    expect(result.filesystemBytes!.before).toBeLessThan(image.sizeBytes);
    expect(lines.some((l) => /^grow-root: ext4 on loop\d+p3 2\d\.\d MiB → 8\d\.\d MiB$/.test(l))).toBe(true);
  });

  it('leaves an image that already fills its disk as it is', async () => {
    const { device } = await loops.attach(image.sizeBytes);
    await copyOnto(loops, image.path, device);
    const before = await table(device);
    const result = await growRoot(device, { log: () => undefined });
    expect(await table(device)).toEqual(before);
    expect(result.partitionBytes.after).toBe(result.partitionBytes.before);
    expect(result.filesystemBytes!.after).toBe(result.filesystemBytes!.before);
  });

  it('grows an xfs root while it is mounted (xfs cannot grow otherwise)', async () => {
    // NOTE: mkfs.xfs 6.x refuses filesystems under 300 MB; the disk is sparse, so this costs little.
    const diskBytes = 448 * MiB;
    const { device } = await loops.attach(diskBytes);
    await must('sgdisk', ['--new=1:2048:+1M', '--typecode=1:EF02', '--new=2:0:+310M', '--typecode=2:8304', device]);
    await must('partx', ['--update', device]);
    await must('mkfs.xfs', ['-q', '-L', 'plinth-root', `${device}p2`]);
    const xfsBytes = async () => {
      const info = await must('xfs_db', ['-r', '-c', 'sb 0', '-c', 'print blocksize dblocks', `${device}p2`]);
      return Number(/blocksize = (\d+)/.exec(info)![1]) * Number(/dblocks = (\d+)/.exec(info)![1]);
    };
    const before = await xfsBytes();
    const result = await growRoot(device, { log: () => undefined });
    const root = (await table(device)).partitions[1]!;
    expect(root.start + root.size - 1).toBe(diskBytes / SECTOR - 34);
    expect(result).toMatchObject({ filesystem: 'xfs', isRoot: true, partitionBytes: { after: root.size * SECTOR }, filesystemBytes: null });
    const after = await xfsBytes();
    expect(before).toBeLessThan(311 * MiB);
    // xfs grows in whole 4 KiB blocks up to the partition's end.
    expect(root.size * SECTOR - after).toBeLessThan(4096);
    expect((await sh('xfs_repair', ['-n', `${device}p2`])).code).toBe(0);
  });

  it('says so (code image) when the disk holds no partition table', async () => {
    const { device, name } = await loops.attach(40 * MiB);
    const error = (await growRoot(device, { log: () => undefined }).catch((e: unknown) => e)) as StepError;
    expect(error).toBeInstanceOf(StepError);
    expect(error.code).toBe('image');
    expect(error.message).toBe(`${name}: the written image has no partition table (blkid found nothing)`);
  });
});
