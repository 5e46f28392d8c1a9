import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { writeImage, type WriteImageResult } from '../src/agent/steps/write-image.js';
import { countingProxy, LoopDevices, MiB, readDevice, serveImage } from '../src/agent/steps/test-fixtures.js';
import { ChunkIndexer } from '../src/protocol/chunk-index.js';
import { machineInfo, record, table, today } from './support.js';

/**
 * What the chunk index saves, counted on the wire: the agent's writer (writeImage) onto a
 * loop device, fetching from a local HTTP server through a proxy that counts the bytes the
 * server sent (headers, the index and chunks fetched again included). An image of random
 * data in runs of 64 KiB to 8 MiB with zeros between them (a third of it data, like a disk
 * image's file systems), written whole (no index), then by its index onto a disk of other
 * bytes, then differentially over version 1 for versions that differ in 5% of their 4 KiB
 * blocks, changed in extents of 4 KiB (scattered), 64 KiB, 512 KiB and 4 MiB at random
 * block offsets.
 *
 * `npm run bench differential [--quick]`: a 512 MiB image; --quick: 32 MiB (the figures are shares of the image).
 */
const QUICK = process.argv.includes('--quick');
const IMAGE_BYTES = (QUICK ? 32 : 512) * MiB;
const EXTENTS = [4096, 64 * 1024, 512 * 1024, 4 * MiB];

interface Row {
  scenario: string;
  changedPercent: number | null;
  sentBytes: number;
  sentPercent: number;
  fetchedBytes: number | null;
  zeroFilledBytes: number | null;
  keptBytes: number | null;
  requests: number | null;
  seconds: number;
  verified: boolean;
}

function makeImage(): Buffer {
  const image = Buffer.alloc(IMAGE_BYTES);
  let at = 0;
  while (at < IMAGE_BYTES) {
    const data = Math.min(IMAGE_BYTES - at, 64 * 1024 * 2 ** Math.floor(Math.random() * 8));
    randomBytes(data).copy(image, at);
    at += data * 3 + Math.floor(Math.random() * 16) * 4096;
  }
  return image;
}

/**
 * `base` with 5% of its 4 KiB blocks (rounded up to whole extents) rewritten, in extents of
 * `extent` bytes at random 4 KiB-aligned offsets that do not overlap (each in a slot of twice
 * its size). Returns the new version and the share of bytes changed.
 */
function changed(base: Buffer, extent: number): { image: Buffer; percent: number } {
  const v = Buffer.from(base);
  const slots = base.length / (2 * extent);
  const wanted = Math.ceil((base.length * 0.05) / extent);
  const picked = new Set<number>();
  while (picked.size < wanted) picked.add(Math.floor(Math.random() * slots));
  for (const slot of picked) randomBytes(extent).copy(v, slot * 2 * extent + Math.floor(Math.random() * (extent / 4096 + 1)) * 4096);
  return { image: v, percent: ((wanted * extent) / base.length) * 100 };
}

export async function run(): Promise<string> {
  const loops = new LoopDevices();
  const rows: Row[] = [];
  const load: number[] = [];
  const v1 = makeImage();
  const disk = await loops.attach(IMAGE_BYTES + MiB);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  try {
    const deploy = async (scenario: string, image: Buffer, o: { index: boolean; differential?: boolean; changedPercent?: number }) => {
      load.push(loadavg()[0]!);
      const file = join(loops.dir, 'image.raw');
      writeFileSync(file, image);
      const indexer = new ChunkIndexer();
      indexer.update(image);
      const body = Buffer.from(JSON.stringify(indexer.finish()));
      const server = await serveImage(file, { files: { 'image.chunks': body } });
      const proxy = await countingProxy(server.origin);
      const started = performance.now();
      let result: WriteImageResult;
      try {
        result = await writeImage({
          url: `${proxy.url}/image.raw`,
          sha256: sha(image),
          sizeBytes: image.length,
          device: disk.device,
          ...(o.index ? { index: { url: `${proxy.url}/image.chunks`, sha256: sha(body) }, differential: o.differential === true } : {}),
          log: () => undefined,
        });
      } finally {
        await proxy.close();
        await server.close();
      }
      const seconds = (performance.now() - started) / 1000;
      const verified = sha(await readDevice(loops, disk.device, 0, image.length)) === sha(image);
      const c = result.chunks;
      rows.push({
        scenario,
        changedPercent: o.changedPercent ?? null,
        sentBytes: proxy.sent(),
        sentPercent: (proxy.sent() / image.length) * 100,
        fetchedBytes: c?.fetchedBytes ?? null,
        zeroFilledBytes: c?.zeroFilledBytes ?? null,
        keptBytes: c?.keptBytes ?? null,
        requests: c?.requests ?? null,
        seconds,
        verified,
      });
    };
    const other = () => writeFileSync(disk.file, Buffer.alloc(IMAGE_BYTES, 0xab), { flag: 'r+' });
    other();
    await deploy('whole image streamed (no index)', v1, { index: false });
    other();
    await deploy('by the index, onto a disk of other bytes', v1, { index: true });
    await deploy('differential, same version', v1, { index: true, differential: true, changedPercent: 0 });
    for (const extent of EXTENTS) {
      writeFileSync(disk.file, v1, { flag: 'r+' });
      const v2 = changed(v1, extent);
      await deploy(`differential, 5% changed in ${extent >= MiB ? `${extent / MiB} MiB` : `${extent / 1024} KiB`} extents`, v2.image, { index: true, differential: true, changedPercent: v2.percent });
    }
  } finally {
    await loops.detachAll();
  }
  const nonZero = (() => {
    let n = 0;
    for (let at = 0; at < v1.length; at += 4096) if (v1.subarray(at, at + 4096).some((b) => b !== 0)) n += 4096;
    return n;
  })();
  const markdown =
    `# Chunk index and differential writes — ${today()}${QUICK ? ' (quick)' : ''}\n\n` +
    `${machineInfo()}; load average (1 min) at each scenario's start: ${load.map((l) => l.toFixed(1)).join(', ')}.\n` +
    `Image: ${IMAGE_BYTES / MiB} MiB, ${((nonZero / IMAGE_BYTES) * 100).toFixed(1)}% of its 4 KiB blocks not zero (random data in runs of 64 KiB to 8 MiB). ` +
    `The agent's writer onto a loop device, from a local HTTP server; sent: bytes the server sent through a counting proxy (headers, index, chunks fetched again included) ÷ image. ` +
    `Differential rows start from version 1 on the disk.\n\n` +
    table(
      rows.map((r) => ({ ...r, changedPercent: r.changedPercent?.toFixed(2) ?? '', sentPercent: r.sentPercent.toFixed(1), seconds: r.seconds.toFixed(1) })),
      ['scenario', 'changedPercent', 'sentBytes', 'sentPercent', 'fetchedBytes', 'zeroFilledBytes', 'keptBytes', 'requests', 'seconds', 'verified'],
    );
  return record(QUICK ? 'differential-quick' : 'differential', markdown, { machine: machineInfo(), imageBytes: IMAGE_BYTES, nonZeroBytes: nonZero, loadAverage: load, rows });
}
