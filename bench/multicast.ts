import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { createLogger } from '../src/core/logger.js';
import { MulticastSessions } from '../src/deploy/multicast.js';
import { udpReceiverSource, type ImageChunkSource } from '../src/agent/steps/multicast-receive.js';
import { uftpReceiver } from '../src/agent/steps/uftp-receive.js';
import { ChunkIndexer } from '../src/protocol/chunk-index.js';
import { writeImage, type WriteImageOptions, type WriteImageResult } from '../src/agent/steps/write-image.js';
import { LoopDevices, MiB, serveImage } from '../src/agent/steps/test-fixtures.js';
import { createTestNetwork, isRoot } from '../test/support/peers/netns.js';
import { machineInfo, record, table, today } from './support.js';

/**
 * Multicast deploys measured on a bridge of network namespaces: the controller's session
 * (MulticastSessions, Debian's udp-sender or uftp) in namespace `ctl`, N lightweight
 * receivers — the agent's own receive-and-verify code (udp-receiver into writeImage onto a
 * loop device; uftpd onto it, then writeImage checking it against the chunk index), each
 * receiver in a namespace of its own — and, in the same run, one unicast deploy of
 * the same image over HTTP on the same bridge (curl in a receiver namespace from a file
 * server in `ctl`, into the same writer). Controller egress is read from `ctl`'s interface
 * counters (every byte on the wire, headers and retransmissions included).
 *
 * `npm run bench multicast [--quick]`: N = 3 and 50, each tool, with a 32 MiB image;
 * --quick: N = 3 and 10 with 8 MiB (fifty receivers' set-up, namespaces and loop devices, is
 * most of the suite's time, and the quick run must stay under ten minutes in all).
 */
const QUICK = process.argv.includes('--quick');
const IMAGE_BYTES = (QUICK ? 8 : 32) * MiB;
const RECEIVERS = QUICK ? [3, 10] : [3, 50];
const RATE = 200_000_000;

interface Row {
  scenario: string;
  receivers: number;
  seconds: number;
  secondsPerDeploy: number;
  egressBytes: number;
  egressPerImage: number;
  egressPerDeploy: number;
  retransmitPercent: number | null;
  multicastDeploys: number;
  httpDeploys: number;
  verified: number;
}

export async function run(): Promise<string> {
  if (!isRoot()) throw new Error('the multicast benchmark creates network namespaces: run it as root');
  const max = Math.max(...RECEIVERS);
  const members: Record<string, string> = { ctl: '10.79.9.1/24' };
  for (let i = 0; i < max; i++) members[`r${i}`] = `10.79.9.${10 + i}/24`;
  const net = createTestNetwork(members);
  const loops = new LoopDevices();
  const image = randomBytes(IMAGE_BYTES);
  const sha256 = createHash('sha256').update(image).digest('hex');
  const file = join(loops.dir, 'image.raw');
  writeFileSync(file, image);
  const indexer = new ChunkIndexer();
  indexer.update(image);
  const indexBody = Buffer.from(JSON.stringify(indexer.finish()));
  const index = { sha256: createHash('sha256').update(indexBody).digest('hex') };
  // The HTTP fallback of the multicast receivers (on this host: its bytes are counted by the writer, not by `ctl`).
  const fallback = await serveImage(file, { files: { 'image.chunks': indexBody } });
  // The unicast reference: a file server in `ctl`, on the bridge.
  const fileServer = spawn(...net.command('ctl', ['python3', '-m', 'http.server', '--bind', '10.79.9.1', '8089', '--directory', loops.dir]), { stdio: 'ignore' });
  const inNs = (m: string) => net.prefix(m);
  // Read over netlink, which answers for the namespace the command runs in; /sys would be the
  // host's (nsenter --net enters the network namespace only, not a mount with its own sysfs).
  const txBytes = () => (JSON.parse(net.exec('ctl', ['ip', '-s', '-j', 'link', 'show', 'dev', 'eth0'])) as { stats64: { tx: { bytes: number } } }[])[0]!.stats64.tx.bytes;
  const disks = await Promise.all(Array.from({ length: max }, () => loops.attach(IMAGE_BYTES + MiB)));
  const rows: Row[] = [];
  const load: number[] = [];
  const write = (i: number, via: Pick<WriteImageOptions, 'multicast' | 'diskReceiver' | 'index'>): Promise<WriteImageResult> =>
    writeImage({ url: fallback.url, sha256, sizeBytes: IMAGE_BYTES, device: disks[i]!.device, ...via, log: () => undefined, bufferBytes: MiB, backoffMs: [200] });
  try {
    // Wait for the file server.
    for (let i = 0; ; i++) {
      try {
        net.exec('r0', ['curl', '-sf', '-o', '/dev/null', 'http://10.79.9.1:8089/image.raw']);
        break;
      } catch (e) {
        if (i > 100) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // One unicast deploy: curl over the bridge into the same verifying writer.
    {
      load.push(loadavg()[0]!);
      const before = txBytes();
      const started = performance.now();
      const curl: ImageChunkSource = {
        describe: 'HTTP over the bridge (curl)',
        async *open() {
          const child = spawn(...net.command('r0', ['curl', '-sf', 'http://10.79.9.1:8089/image.raw']), { stdio: ['ignore', 'pipe', 'ignore'] });
          for await (const chunk of child.stdout) yield chunk as Buffer;
        },
      };
      const r = await write(0, { multicast: curl });
      // Every byte through curl over the bridge, or the figure is not the bridge's.
      if (r.bytesReceived.http > 0) throw new Error(`the unicast reference fell back to the host's HTTP server (${r.bytesReceived.http} bytes): curl over the bridge failed`);
      const seconds = (performance.now() - started) / 1000;
      const egress = txBytes() - before;
      rows.push(row('unicast HTTP, one machine', 1, seconds, egress, null, [r], true));
    }
    let port = 9600;
    for (const transport of ['udpcast', 'uftp'] as const) {
      for (const n of RECEIVERS) {
        load.push(loadavg()[0]!);
        const sessions = new MulticastSessions({ interface: 'eth0', portbase: port, prefix: inNs('ctl'), log: createLogger('silent') });
        port += 2;
        const before = txBytes();
        const started = performance.now();
        const runs = Array.from({ length: n }, (_, i) => `run-${i}`);
        const settings = { transport, rateBitsPerSecond: RATE, minReceivers: n, maxWaitSeconds: 120, ttl: 1 };
        const s = runs.map((r) => sessions.join({ name: 'bench', sha256, sizeBytes: IMAGE_BYTES, file }, settings, r))[0]!;
        const receive = { session: s.id, portbase: s.portbase, startTimeoutSeconds: 180, receiveTimeoutSeconds: 30 };
        // uftp starts once its N machines were handed the session; each uftpd writes its disk, which the writer then checks.
        const results = await Promise.all(
          runs.map(async (run, i) => {
            const via = { prefix: inNs(`r${i}`), log: () => undefined };
            if (transport === 'udpcast') return write(i, { multicast: udpReceiverSource(receive, via) });
            const uftp = (await sessions.handOut(s.id, run))!;
            return write(i, { index: { url: `${fallback.origin}/image.chunks`, sha256: index.sha256 }, diskReceiver: uftpReceiver({ ...receive, transport, uftp }, via) });
          }),
        );
        const seconds = (performance.now() - started) / 1000;
        const ended = await sessions.ended(s.id);
        const egress = txBytes() - before;
        rows.push(row(`${transport === 'uftp' ? 'uftp (AES-256-GCM)' : 'udpcast'} at ${RATE / 1e6} Mbit/s`, n, seconds, egress, ended?.retransmitPercent ?? null, results));
        await sessions.stop();
      }
    }
  } finally {
    fileServer.kill('SIGTERM');
    await fallback.close();
    net.remove();
    await loops.detachAll();
  }

  const markdown =
    `# Multicast deploys — ${today()}${QUICK ? ' (quick)' : ''}\n\n` +
    `${machineInfo()}; load average (1 min) at each scenario's start: ${load.map((l) => l.toFixed(1)).join(', ')}.\n` +
    `Image: ${IMAGE_BYTES / MiB} MiB of random bytes. Namespaces on one bridge; receivers are the agent's udp-receiver + writeImage onto loop devices, or uftpd onto them and writeImage checking each chunk against the index.\n` +
      `uftp's retransmitPercent: blocks receivers asked for again (NAKs) ÷ (the image's blocks × receivers).\n` +
    `Egress: bytes sent by the controller's interface (headers, control and retransmissions included) ÷ image size; per deploy: ÷ N as well.\n\n` +
    table(
      rows.map((r) => ({ ...r, egressPerImage: r.egressPerImage.toFixed(3), egressPerDeploy: r.egressPerDeploy.toFixed(3), seconds: r.seconds.toFixed(1), secondsPerDeploy: r.secondsPerDeploy.toFixed(2) })),
      ['scenario', 'receivers', 'seconds', 'secondsPerDeploy', 'egressPerImage', 'egressPerDeploy', 'retransmitPercent', 'multicastDeploys', 'httpDeploys', 'verified'],
    );
  return record(QUICK ? 'multicast-quick' : 'multicast', markdown, { machine: machineInfo(), imageBytes: IMAGE_BYTES, rateBitsPerSecond: RATE, loadAverage: load, rows });
}

function row(scenario: string, n: number, seconds: number, egress: number, retransmitPercent: number | null, results: WriteImageResult[], unicast = false): Row {
  return {
    scenario,
    receivers: n,
    seconds,
    secondsPerDeploy: seconds / n,
    egressBytes: egress,
    egressPerImage: egress / IMAGE_BYTES,
    egressPerDeploy: egress / IMAGE_BYTES / n,
    retransmitPercent,
    // The unicast reference feeds curl's stdout through the writer's first source.
    multicastDeploys: unicast ? 0 : results.filter((r) => r.transport === 'multicast').length,
    httpDeploys: unicast ? results.length : results.filter((r) => r.bytesReceived.http > 0).length,
    verified: results.length,
  };
}
