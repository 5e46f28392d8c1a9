import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DiskFacts } from '../../core/facts.js';
import { StepError } from './errors.js';
import type { DeployParams, StepName, StepReportStatus } from './protocol.js';
import { runDeploySteps, type StepReportBody } from './runner.js';
import { LoopDevices, MiB, must, readDevice, serveImage } from './test-fixtures.js';
import { withMounted } from './mount.js';
import { partitionsOf } from './block-device.js';
import { nodeExec } from './exec.js';

/**
 * Keep-partitions (the installer console's, docs/console.md): a partition image (one ext4 file
 * system) written into partition 2 of a real loop disk with two partitions, through the same
 * verifying writer as a whole-disk deploy. Partition 1 and the partition table stay byte for
 * byte; the file system grows to its partition, holds the image's marker and the seed.
 */
describe('keep-partitions on loop devices', () => {
  const loops = new LoopDevices();
  const seed = { userData: '#cloud-config\nhostname: node-8\n', metaData: 'instance-id: run-2\n', networkConfig: 'version: 2\n' };
  let image: { path: string; sha256: string; sizeBytes: number };
  let server: Awaited<ReturnType<typeof serveImage>>;
  beforeAll(async () => {
    const root = join(loops.dir, 'part-root');
    mkdirSync(root);
    writeFileSync(join(root, 'marker'), 'the partition image\n');
    const path = join(loops.dir, 'part.img');
    await must('mkfs.ext4', ['-q', '-F', '-L', 'part', '-d', root, path, '8M']);
    const bytes = readFileSync(path);
    image = { path, sha256: createHash('sha256').update(bytes).digest('hex'), sizeBytes: bytes.length };
    server = await serveImage(path);
  });
  afterAll(async () => {
    await server?.close();
    await loops.detachAll();
  });

  /** A 64 MiB disk: partition 1 (16 MiB of random bytes), partition 2 (40 MiB, empty). */
  async function twoPartitionDisk() {
    const disk = await partitioned(16, 40);
    await must('dd', [`if=/dev/urandom`, `of=${disk.device}p1`, 'bs=1M', 'count=16', 'oflag=direct', 'status=none']);
    return disk;
  }
  /** A 64 MiB GPT disk with two partitions of these sizes (MiB), known to the kernel. */
  async function partitioned(first: number, second: number) {
    const disk = await loops.attach(64 * MiB);
    await must('sgdisk', [`--new=1:0:+${first}M`, `--new=2:0:+${second}M`, disk.device]);
    await must('partx', ['--update', disk.device]);
    return disk;
  }
  const digest = async (device: string, start: number, length: number) => createHash('sha256').update(await readDevice(loops, device, start, length)).digest('hex');
  const facts = (name: string): DiskFacts => ({ name, sizeBytes: 64 * MiB, model: null, serial: null, wwn: null, rotational: false });
  const params = (disk: string, partition: string): DeployParams => ({
    image: { url: '/image.raw', sha256: image.sha256, sizeBytes: image.sizeBytes, format: 'raw' },
    rootDeviceHints: { name: disk },
    partition,
    seed,
  });
  function recorder() {
    const events: [StepName, StepReportStatus, StepReportBody?][] = [];
    return {
      events,
      reportStep: async (name: StepName, status: StepReportStatus, report?: StepReportBody) => void events.push([name, status, report]),
      log: () => undefined,
      beforeReboot: async () => undefined,
      succeeded: (name: string) => events.find(([n, s]) => n === name && s === 'succeeded')?.[2],
    };
  }

  it('writes the image into partition 2, sha256 verified, grows its file system; partition 1 and the table are byte-identical', async () => {
    const disk = await twoPartitionDisk();
    // The table (LBA 0-33) and the backup table (the last 33 sectors), and partition 1.
    const table = JSON.parse(await must('sfdisk', ['--json', disk.device]));
    const [p1, p2] = table.partitiontable.partitions as { start: number; size: number }[];
    const before = { head: await digest(disk.device, 0, 34 * 512), tail: await digest(disk.device, 64 * MiB - 33 * 512, 33 * 512), p1: await digest(disk.device, p1!.start * 512, p1!.size * 512) };
    const r = recorder();
    await runDeploySteps(params(disk.name, `${disk.name}p2`), { ...r, controllerUrl: server.origin, token: 'plrun_tok', inspectDisks: async () => [facts(disk.name)] });

    expect(r.events.map(([n, s]) => `${n} ${s}`)).toEqual(['select-disk running', 'select-disk succeeded', 'write-image running', 'write-image succeeded', 'grow-root running', 'grow-root succeeded', 'configure running', 'configure succeeded']);
    expect(r.succeeded('write-image')!.details).toMatchObject({ device: `${disk.device}p2`, bytes: image.sizeBytes, sha256: image.sha256 });
    expect(r.succeeded('grow-root')!.details).toMatchObject({ partition: `${disk.device}p2`, filesystem: 'ext4', filesystemBytes: { before: 8 * MiB, after: 40 * MiB } });
    expect(r.succeeded('grow-root')!.message).toBe(`${disk.name}p2 (ext4) grown to its partition (40.0 MiB), 8.0 MiB → 40.0 MiB; the other partitions kept`);
    expect(await digest(disk.device, 0, 34 * 512)).toBe(before.head);
    expect(await digest(disk.device, 64 * MiB - 33 * 512, 33 * 512)).toBe(before.tail);
    expect(await digest(disk.device, p1!.start * 512, p1!.size * 512)).toBe(before.p1);
    expect(JSON.parse(await must('sfdisk', ['--json', disk.device]))).toEqual(table);
    // The file system is clean, mounts, and holds the image's marker and the seed.
    await must('e2fsck', ['-f', '-n', `${disk.device}p2`]);
    const found = await withMounted(`${disk.device}p2`, 'ext4', nodeExec(), async (dir) => [readFileSync(join(dir, 'marker'), 'utf8'), readFileSync(join(dir, 'var/lib/cloud/seed/nocloud/user-data'), 'utf8')]);
    expect(found).toEqual(['the partition image\n', seed.userData]);
    expect(p2!.size * 512).toBe(40 * MiB);
    // What the console's partition screen lists now.
    expect((await partitionsOf(disk.device, nodeExec())).map((p) => [p.name, p.sizeBytes, p.filesystem, p.label])).toEqual([
      [`${disk.name}p1`, 16 * MiB, null, null],
      [`${disk.name}p2`, 40 * MiB, 'ext4', 'part'],
    ]);
  });

  it('refuses a partition smaller than the image, or one the disk does not have, before writing anything', async () => {
    const disk = await partitioned(16, 4);
    const p2 = (JSON.parse(await must('sfdisk', ['--json', disk.device])).partitiontable.partitions as { start: number }[])[1]!;
    const filler = randomBytes(4 * MiB);
    const fd = openSync(disk.device, 'r+');
    try {
      writeSync(fd, filler, 0, filler.length, p2.start * 512);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    for (const [partition, message] of [
      [`${disk.name}p2`, `${disk.name}p2 (4.0 MiB, ${4 * MiB} bytes) is smaller than the image (${8 * MiB} bytes)`],
      [`${disk.name}p3`, `${disk.name} has no partition ${disk.name}p3`],
    ] as const) {
      const r = recorder();
      const error = (await runDeploySteps(params(disk.name, partition), { ...r, controllerUrl: server.origin, token: null, inspectDisks: async () => [facts(disk.name)] }).catch((e: unknown) => e)) as StepError;
      expect(error).toBeInstanceOf(StepError);
      expect([error.code, error.step, error.message]).toEqual(['disk', 'write-image', message]);
    }
    expect((await readDevice(loops, disk.device, p2.start * 512, 4 * MiB)).equals(filler)).toBe(true);
  });
});
