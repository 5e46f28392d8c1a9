import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DiskFacts } from '../../core/facts.js';
import { StepError } from './errors.js';
import type { DeployParams, StepName, StepReportStatus } from './protocol.js';
import { runDeploySteps, runWipeSteps, type StepReportBody } from './runner.js';
import { buildTestImage, isZero, LoopDevices, MiB, must, readDevice, serveImage, sh, type TestImage } from './test-fixtures.js';
import type { WriteImageResult } from './write-image.js';
import { ChunkIndexer } from '../../protocol/chunk-index.js';

type Event = [string, StepReportStatus?, StepReportBody?];

/** Records what the runner reports, in order; `beforeReboot` shows up as its own event. */
function recorder() {
  const events: Event[] = [];
  const lines: string[] = [];
  return {
    events,
    lines,
    reportStep: async (name: StepName, status: StepReportStatus, report?: StepReportBody) => void events.push([name, status, report]),
    log: (line: string) => void lines.push(line),
    beforeReboot: async () => void events.push(['beforeReboot']),
    sequence: () => events.map(([name, status]) => (status ? `${name} ${status}` : name)),
  };
}

const facts = (name: string, sizeBytes: number): DiskFacts => ({ name, sizeBytes, model: null, serial: `SER-${name}`, wwn: null, rotational: false });

/**
 * Writes an md RAID superblock, format 1.0 (near the end of the device), as mdadm would:
 * enough for blkid to call the partition a linux_raid_member.
 */
function writeFakeMdSuperblock(partition: string): void {
  const sectors = Number(readFileSync(`/sys/class/block/${partition.slice('/dev/'.length)}/size`, 'utf8'));
  const at = (sectors - 16) & ~7;
  const sb = Buffer.alloc(256);
  sb.writeUInt32LE(0xa92b4efc, 0); // magic
  sb.writeUInt32LE(1, 4); // major version
  randomBytes(16).copy(sb, 16); // array UUID
  sb.write('old:0', 32); // array name
  sb.writeUInt32LE(1, 72); // level
  sb.writeUInt32LE(2, 92); // raid disks
  sb.writeBigUInt64LE(BigInt(at - 8), 136); // data size
  sb.writeBigUInt64LE(BigInt(at), 144); // where this superblock is, in sectors
  randomBytes(16).copy(sb, 168); // device UUID
  let sum = 0n;
  for (let i = 0; i < 256; i += 4) sum += BigInt(sb.readUInt32LE(i));
  sb.writeUInt32LE(Number(((sum & 0xffffffffn) + (sum >> 32n)) & 0xffffffffn), 216);
  const fd = openSync(partition, 'r+');
  try {
    writeSync(fd, sb, 0, sb.length, at * 512);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

const seed = { userData: '#cloud-config\nhostname: node-7\n', metaData: 'instance-id: run-1\n', networkConfig: 'version: 2\n' };

describe('runDeploySteps and runWipeSteps on loop devices', () => {
  const loops = new LoopDevices();
  let image: TestImage;
  let server: Awaited<ReturnType<typeof serveImage>>;
  beforeAll(async () => {
    image = await buildTestImage(loops);
    server = await serveImage(image.path);
  });
  afterAll(async () => {
    await server?.close();
    await loops.detachAll();
  });

  const params = (): DeployParams => ({ image: { url: '/image.raw', sha256: image.sha256, sizeBytes: image.sizeBytes, format: 'raw' }, seed });

  it('deploys onto the smallest disk that fits: select, write, grow, configure, then asks to boot from disk', async () => {
    const tiny = await loops.attach(16 * MiB);
    const target = await loops.attach(64 * MiB);
    const big = await loops.attach(128 * MiB);
    const r = recorder();
    const outcome = await runDeploySteps(params(), {
      ...r,
      controllerUrl: server.origin,
      token: 'plrun_tok',
      inspectDisks: async () => [facts(big.name, 128 * MiB), facts(tiny.name, 16 * MiB), facts(target.name, 64 * MiB)],
    });

    expect(r.sequence()).toEqual([
      'select-disk running',
      'select-disk succeeded',
      'write-image running',
      'write-image succeeded',
      'grow-root running',
      'grow-root succeeded',
      'configure running',
      'configure succeeded',
      'beforeReboot',
    ]);
    const succeeded = Object.fromEntries(r.events.filter(([, s]) => s === 'succeeded').map(([name, , report]) => [name, report!]));
    expect(succeeded['select-disk']!.details).toMatchObject({ disk: target.name, sizeBytes: 64 * MiB, chosenBy: 'the smallest disk the image fits on' });
    expect(succeeded['write-image']!.details).toMatchObject({ device: target.device, bytes: image.sizeBytes, sha256: image.sha256, attempts: 1 });
    expect(succeeded['write-image']!.message).toMatch(/^32\.0 MiB in [\d.]+ s \([\d.]+ [KMG]iB\/s\), sha256 verified$/);
    expect(succeeded['grow-root']!.details).toMatchObject({ partition: `${target.device}p3`, filesystem: 'ext4', isRoot: true });
    expect(succeeded['configure']!.details).toMatchObject({ directory: '/var/lib/cloud/seed/nocloud' });
    for (const [, , report] of r.events.filter(([, s]) => s === 'succeeded')) expect(report!.details!['durationMs']).toEqual(expect.any(Number));
    expect(server.requests.at(-1)!.authorization).toBe('Bearer plrun_tok');
    expect(outcome.disk.name).toBe(target.name);

    // What the chosen disk holds: the image's ESP byte for byte, a root grown to the end, the seed.
    const esp = await readDevice(loops, target.device, 2 * MiB, 8 * MiB);
    expect(esp.equals(readFileSync(image.path).subarray(2 * MiB, 10 * MiB))).toBe(true);
    const table = JSON.parse(await must('sfdisk', ['--json', target.device])).partitiontable as { lastlba: number; partitions: { start: number; size: number }[] };
    expect(table.lastlba).toBe((64 * MiB) / 512 - 34);
    expect(table.partitions[2]!.start + table.partitions[2]!.size - 1).toBe(table.lastlba);
    expect(await must('debugfs', ['-R', 'cat /var/lib/cloud/seed/nocloud/user-data', `${target.device}p3`])).toBe(seed.userData);
    expect(await must('debugfs', ['-R', 'cat /hello.txt', `${target.device}p3`])).toBe(image.files['hello.txt']);
    // The other disks were not touched.
    expect(isZero(await readDevice(loops, big.device, 0, 4 * MiB))).toBe(true);
    expect(isZero(await readDevice(loops, tiny.device, 0, 4 * MiB))).toBe(true);
  });

  it('redeploys the image the disk holds by its chunk index: fetches only what the last deploy changed, and the result is whole', async () => {
    const indexer = new ChunkIndexer();
    indexer.update(readFileSync(image.path));
    const body = Buffer.from(JSON.stringify(indexer.finish()));
    const served = await serveImage(image.path, { files: { 'image.chunks': body } });
    const target = await loops.attach(64 * MiB);
    const byIndex = (differential: boolean): DeployParams => ({
      image: { ...params().image!, index: { url: '/image.chunks', sha256: createHash('sha256').update(body).digest('hex') }, ...(differential ? { differential } : {}) },
      seed,
    });
    const deploy = async (differential: boolean) => {
      const r = recorder();
      await runDeploySteps(byIndex(differential), { ...r, controllerUrl: served.origin, token: 'plrun_tok', inspectDisks: async () => [facts(target.name, 64 * MiB)] });
      expect(r.sequence().at(-1)).toBe('beforeReboot');
      return r.events.find(([name, status]) => name === 'write-image' && status === 'succeeded')![2]!;
    };
    try {
      const fresh = await deploy(false);
      const first = fresh.details!['chunks'] as WriteImageResult['chunks'] & {};
      expect(first).toMatchObject({ keptBytes: 0, differential: false });
      expect(first.zeroFilledBytes).toBeGreaterThan(0);
      expect(fresh.message).toMatch(/^32\.0 MiB in [\d.]+ s \([\d.]+ [KMG]iB\/s\): fetched [\d.]+ MiB, zero-filled [\d.]+ MiB, every chunk verified$/);
      const again = await deploy(true);
      const second = again.details!['chunks'] as WriteImageResult['chunks'] & {};
      // The partition table, the grown root's metadata, the seed and the erased signatures are
      // what the first deploy changed; the rest of the image is on the disk already.
      expect(second.differential).toBe(true);
      expect(second.keptBytes).toBeGreaterThan(image.sizeBytes / 2);
      expect(second.fetchedBytes).toBeLessThan(first.fetchedBytes);
      expect(second.fetchedBytes + second.zeroFilledBytes + second.keptBytes).toBe(image.sizeBytes);
      expect(again.message).toMatch(/, kept [\d.]+ MiB already on the disk, every chunk verified$/);
      expect(await must('debugfs', ['-R', 'cat /hello.txt', `${target.device}p3`])).toBe(image.files['hello.txt']);
      expect(await must('debugfs', ['-R', 'cat /var/lib/cloud/seed/nocloud/user-data', `${target.device}p3`])).toBe(seed.userData);
      console.log(`differential redeploy onto the deployed disk: fetched ${second.fetchedBytes}, zero-filled ${second.zeroFilledBytes}, kept ${second.keptBytes} (fresh: fetched ${first.fetchedBytes})`);
    } finally {
      await served.close();
    }
  });

  it('clears what the disk held before writing, so that no old signature outlives the image', async () => {
    const target = await loops.attach(64 * MiB);
    // An old install: a RAID member partition from where the image's root starts (10 MiB) to
    // the GPT's last usable sector, its md 1.0 superblock near its end. The grown root covers
    // exactly that extent: had the superblock survived, blkid would find ext4 and RAID on the
    // root ("ambivalent") and the deployed system could not mount it by UUID.
    await must('sgdisk', ['--new=1:20480:0', target.device]);
    await must('partx', ['--update', target.device]);
    writeFakeMdSuperblock(`${target.device}p1`);
    expect(await must('blkid', ['--probe', '--output', 'export', `${target.device}p1`])).toMatch(/^TYPE=linux_raid_member$/m);
    const r = recorder();
    await runDeploySteps(params(), { ...r, controllerUrl: server.origin, token: null, inspectDisks: async () => [facts(target.name, 64 * MiB)] });
    expect(r.sequence().at(-1)).toBe('beforeReboot');
    const table = JSON.parse(await must('sfdisk', ['--json', target.device])).partitiontable as { partitions: { start: number; size: number }[] };
    // Both the old partition and the grown root end at the last usable sector.
    expect(table.partitions[2]!.start + table.partitions[2]!.size - 1).toBe((64 * MiB) / 512 - 34);
    const root = await sh('blkid', ['--probe', '--output', 'export', `${target.device}p3`]);
    expect(root.code).toBe(0);
    expect(root.stdout).toMatch(/^TYPE=ext4$/m);
    expect(root.stdout).toMatch(/^LABEL=plinth-root$/m);
  });

  it('stops at the first failure, reports it with its code, and never asks to boot from disk', async () => {
    const corrupt = `${image.path}.corrupt`;
    const bytes = readFileSync(image.path);
    bytes[12 * MiB] = bytes[12 * MiB]! ^ 0x01;
    writeFileSync(corrupt, bytes);
    const bad = await serveImage(corrupt);
    const target = await loops.attach(64 * MiB);
    const r = recorder();
    try {
      const error = (await runDeploySteps(params(), { ...r, controllerUrl: bad.origin, token: null, inspectDisks: async () => [facts(target.name, 64 * MiB)] }).catch((e: unknown) => e)) as StepError;
      expect(error).toBeInstanceOf(StepError);
      expect(error.code).toBe('image');
      expect(error.step).toBe('write-image');
      expect(r.sequence()).toEqual(['select-disk running', 'select-disk succeeded', 'write-image running', 'write-image failed']);
      const failed = r.events.at(-1)![2]!;
      expect(failed.message).toBe(error.message);
      expect(failed.message).toMatch(/^checksum mismatch: expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}/);
      expect(failed.details).toMatchObject({ code: 'image', expected: image.sha256, durationMs: expect.any(Number) });
      expect(isZero(await readDevice(loops, target.device, 0, MiB))).toBe(true);
    } finally {
      await bad.close();
    }
  });

  it('fails select-disk (code disk) when the image fits on no disk', async () => {
    const r = recorder();
    const error = (await runDeploySteps(params(), { ...r, controllerUrl: server.origin, token: null, inspectDisks: async () => [facts('loop99', 16 * MiB)] }).catch((e: unknown) => e)) as StepError;
    expect(error.code).toBe('disk');
    expect(r.sequence()).toEqual(['select-disk running', 'select-disk failed']);
    expect(r.events[1]![2]!.message).toBe(`the image (32.0 MiB, ${image.sizeBytes} bytes) is larger than every disk: the largest is loop99 (16.0 MiB, 16777216 bytes)`);
  });

  it('wipes every disk inspection finds, as one erase step', async () => {
    const a = await loops.attach(48 * MiB, image.path);
    const b = await loops.attach(40 * MiB);
    await must('sgdisk', ['--new=1:2048:0', b.device]);
    const r = recorder();
    const outcome = await runWipeSteps({ mode: 'quick' }, { ...r, inspectDisks: async () => [facts(a.name, 48 * MiB), facts(b.name, 40 * MiB)] });
    expect(r.sequence()).toEqual(['erase running', 'erase succeeded']);
    expect(r.events[1]![2]!.details).toMatchObject({ mode: 'quick', disks: [{ disk: a.name, method: 'quick' }, { disk: b.name, method: 'quick' }] });
    expect(outcome.disks.map((d) => d.bytes)).toEqual([48 * MiB, 40 * MiB]);
    for (const d of [a, b]) {
      expect((await sh('blkid', ['--probe', d.device])).code).toBe(2);
      expect(isZero(await readDevice(loops, d.device, 0, 40 * MiB))).toBe(true);
    }
  });
});
