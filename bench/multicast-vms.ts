import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAverage, machineInfo, record, table, today } from './support.js';

/**
 * `npm run bench multicast-vms`: N = 3 real VMs (QEMU TCG, BIOS, the real installer) deploying
 * one image together, by running the end-to-end test that proves it
 * (test/e2e/multicast-vms.test.ts: two VMs in one udpcast session, the third — powered on once
 * the machine's second VM slot frees — over HTTP, each then booting the OS it got) and
 * recording the figures it writes: the controller's egress during the session (its interface's
 * counter: every byte on the wire), udp-sender's retransmissions, and each machine's write time
 * against the unicast deploy of the same image in the same run. Minutes of VM time: not in
 * `--quick`.
 */
interface Figures {
  imageBytes: number;
  rateBitsPerSecond: number;
  sessionEgressBytes: number | null;
  session: { bytesSent: number; retransmitPercent: number; receivers: number; startedAt: string; endedAt: string };
  machines: { machine: string; transport: string; bytesReceived?: { multicast: number; http: number }; writeSeconds: number; powerOnToDeployedSeconds: number }[];
}

export async function run(): Promise<string> {
  const out = join(tmpdir(), `plinth-multicast-vms-${process.pid}.json`);
  const load0 = loadAverage();
  const r = spawnSync('npx', ['vitest', 'run', 'test/e2e/multicast-vms.test.ts'], { stdio: 'inherit', env: { ...process.env, PLINTH_MULTICAST_VM_FIGURES: out } });
  if (r.status !== 0 || !existsSync(out)) throw new Error(`test/e2e/multicast-vms.test.ts failed (exit ${r.status}): no figures`);
  const f = JSON.parse(readFileSync(out, 'utf8')) as Figures;
  rmSync(out);
  const MiB = 2 ** 20;
  const multicast = f.machines.filter((m) => m.transport === 'multicast');
  const unicast = f.machines.filter((m) => m.transport === 'http');
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const unicastWrite = mean(unicast.map((m) => m.writeSeconds));
  const rows = f.machines.map((m) => ({
    machine: m.machine,
    transport: m.transport,
    'multicast MiB': ((m.bytesReceived?.multicast ?? 0) / MiB).toFixed(1),
    'HTTP MiB': ((m.bytesReceived?.http ?? 0) / MiB).toFixed(1),
    'write-image s': m.writeSeconds.toFixed(1),
    'power-on → deployed s': m.powerOnToDeployedSeconds.toFixed(0),
  }));
  const egress = f.sessionEgressBytes;
  const md =
    `# Multicast deploy to three VMs — ${today()}\n\n${machineInfo()}; load average ${load0} → ${loadAverage()}. ` +
    `QEMU under TCG, BIOS, 1.5 GiB each, on taps on a namespace bridge; the controller on the bridge through a veth, its dnsmasq the only DHCP server; ` +
    `a ${(f.imageBytes / MiB).toFixed(0)} MiB whole-disk image (a real tiny OS: syslinux, the installer's kernel, busybox) at a ${(f.rateBitsPerSecond / 1e6).toFixed(0)} Mbit/s cap. ` +
    `Two VMs in one udpcast session; the third powered on once a VM slot freed (two VMs at most on this machine), so it joined late and wrote over HTTP: the unicast reference of the same run.\n\n` +
    table(rows, ['machine', 'transport', 'multicast MiB', 'HTTP MiB', 'write-image s', 'power-on → deployed s']) +
    `\n| figure | value |\n|---|---|\n` +
    `| controller egress during the session (interface counter) | ${egress === null ? 'not sampled' : `${(egress / MiB).toFixed(1)} MiB = ${(egress / f.imageBytes).toFixed(2)}× the image for ${multicast.length} deploys, ${(egress / f.imageBytes / Math.max(1, multicast.length)).toFixed(2)}× per deploy`} |\n` +
    `| udp-sender's retransmissions | ${f.session.retransmitPercent}% |\n` +
    `| write time per deploy, multicast (session shared) / unicast | ${(mean(multicast.map((m) => m.writeSeconds)) / Math.max(1, multicast.length)).toFixed(1)} s / ${unicastWrite.toFixed(1)} s |\n` +
    `\nThe multicast write time includes the wait for the second receiver (the session starts when both joined). The unicast deploy fetches the image by its chunk index, so its zero chunks are written without crossing the network.\n`;
  return record('multicast-vms', md, { date: today(), machine: machineInfo(), ...f });
}
