import { describe, expect, it } from 'vitest';
import { collectFacts, type InspectionProblem } from './collect.js';
import type { CommandResult, CommandRunner } from './command-runner.js';
import type { FactsFs } from './facts-fs.js';
import { IP_ADDR_ARGS } from './ip-addr.js';
import { LSBLK_ARGS } from './lsblk.js';
import { LSPCI_ARGS } from './lspci.js';
import { capture, captureFiles, FAILED_CAPTURES, shared, type Machine } from './test-fixtures.js';

const MiB = 1024 ** 2;

/** Which capture file answers which command line. */
function captureFor(command: string, args: readonly string[]): string | null {
  const line = [command, ...args].join(' ');
  if (line === 'dmidecode') return 'dmidecode.txt';
  if (line === 'lscpu') return 'lscpu.txt';
  if (line === ['lsblk', ...LSBLK_ARGS].join(' ')) return 'lsblk.json';
  if (line === ['ip', ...IP_ADDR_ARGS].join(' ')) return 'ip-addr-details.json';
  if (line === ['lspci', ...LSPCI_ARGS].join(' ')) return 'lspci.txt';
  if (line === 'ipmitool lan print') return 'ipmitool-lan.txt';
  const ethtool = /^ethtool (-i )?(\S+)$/.exec(line);
  if (ethtool) return ethtool[1] ? `ethtool-i-${ethtool[2]}.txt` : `ethtool-${ethtool[2]}.txt`;
  return null;
}

const missing = (command: string): CommandResult => ({ ok: false, reason: 'missing', exitCode: null, stdout: '', stderr: '', message: `${command} is not installed` });

/** A runner answering from a machine's captures, with per-command overrides. */
function captureRunner(machine: Machine, overrides: Record<string, CommandResult | ((args: readonly string[]) => CommandResult)> = {}): CommandRunner & { calls: string[] } {
  const calls: string[] = [];
  const runner = async (command: string, args: readonly string[]): Promise<CommandResult> => {
    calls.push([command, ...args].join(' '));
    const override = overrides[command];
    if (override) return typeof override === 'function' ? override(args) : override;
    const file = captureFor(command, args);
    if (file === null || !captureFiles(machine).includes(file)) return missing(command);
    const text = capture(machine, file);
    const exitCode = FAILED_CAPTURES[machine][file];
    if (exitCode !== undefined) return { ok: false, reason: 'failed', exitCode, stdout: '', stderr: text, message: `${command} exited with status ${exitCode}` };
    return { ok: true, stdout: text };
  };
  return Object.assign(runner, { calls });
}

/** A filesystem holding what the machine's captures say about /proc and /sys. */
function captureFs(machine: Machine, extra: Record<string, string> = {}): FactsFs {
  const files = new Map<string, string>();
  for (const name of captureFiles(machine)) {
    if (FAILED_CAPTURES[machine][name] !== undefined) continue;
    const text = capture(machine, name);
    let m: RegExpExecArray | null;
    if (name === 'meminfo.txt') files.set('/proc/meminfo', text);
    else if (name === 'cpuinfo.txt') files.set('/proc/cpuinfo', text);
    else if ((m = /^dmi-id-(.+)\.txt$/.exec(name))) files.set(`/sys/class/dmi/id/${m[1]}`, text);
    else if ((m = /^carrier-(.+)\.txt$/.exec(name))) files.set(`/sys/class/net/${m[1]}/carrier`, text);
    else if ((m = /^sysblock-([a-z0-9]+)-(.+)\.txt$/.exec(name))) files.set(`/sys/block/${m[1]}/${m[2]!.replace(/^(device|queue)_/, '$1/')}`, text);
  }
  if (machine === 'qemu-uefi') files.set('/sys/firmware/efi/systab', '');
  // The qemu-bios VM has a BMC (ipmi-bmc-sim behind isa-ipmi-kcs): its ipmitool reached it.
  if (machine === 'qemu-bios') files.set('/dev/ipmi0', '');
  for (const [path, text] of Object.entries(extra)) files.set(path, text);
  const under = (dir: string): string[] => [...files.keys()].filter((p) => p.startsWith(`${dir}/`));
  return {
    readText: async (path) => files.get(path) ?? null,
    exists: async (path) => files.has(path) || under(path).length > 0,
    listDir: async (path) => {
      const names = [...new Set(under(path).map((p) => p.slice(path.length + 1).split('/')[0]!))];
      return names.length > 0 ? names.sort() : null;
    },
    readLink: async () => null,
  };
}

async function collect(run: CommandRunner, fs: FactsFs): Promise<{ facts: Awaited<ReturnType<typeof collectFacts>>; problems: InspectionProblem[] }> {
  const problems: InspectionProblem[] = [];
  const facts = await collectFacts(run, fs, { onProblem: (p) => problems.push(p) });
  return { facts, problems };
}

describe('collectFacts with every tool present (qemu-bios captures)', () => {
  it('produces the facts of the VM', async () => {
    const { facts, problems } = await collect(captureRunner('qemu-bios'), captureFs('qemu-bios'));
    expect(facts.system).toEqual({ uuid: '5a3f0c2e-8b1d-4e6a-9c7f-1d2e3f405162', serial: 'PLN-0001-SN', assetTag: 'ASSET-0042', manufacturer: 'Plinth Test Systems', productName: 'Plinth Lab Node' });
    expect(facts.memory).toEqual({ totalBytes: 1536 * MiB, source: 'smbios' });
    expect(facts.cpu).toMatchObject({ sockets: 2, cores: 4, threads: 4 });
    expect(facts.firmware).toEqual({ bootMode: 'bios', vendor: 'PlinthLab', version: '1.2.3' });
    expect(facts.nics.map((n) => [n.name, n.driver, n.speedMbps, n.link])).toEqual([
      ['eth0', 'virtio_net', 10000, true],
      ['eth1', 'e1000', 1000, true],
    ]);
    expect(facts.bmc).toBeNull();
    // The BMC simulator answers but has no LAN settings: reported, not fatal.
    expect(problems.map((p) => p.source)).toEqual(['ipmitool lan print']);
  });

  it('fills disk serials and WWNs from sysfs when lsblk has none (no udev in the installer)', async () => {
    const { facts } = await collect(captureRunner('qemu-bios'), captureFs('qemu-bios'));
    expect(facts.disks.map((d) => [d.name, d.serial, d.wwn])).toEqual([
      ['sda', null, '0x5000c500a1b2c3d4'],
      ['vda', 'VDISK-SMALL-1', null],
      ['vdb', 'VDISK-LARGE-2', null],
    ]);
    expect(facts.hw).toContainEqual(['disk', 'sda', 'wwn-id', 'wwn-0x5000c500a1b2c3d4']);
  });

  it('does not probe IPMI channels when there is no BMC to talk to', async () => {
    const run = captureRunner('qemu-bios');
    await collect(run, captureFs('qemu-bios'));
    expect(run.calls.filter((c) => c.startsWith('ipmitool'))).toEqual(['ipmitool lan print']);
  });
});

describe('collectFacts on UEFI (qemu-uefi captures)', () => {
  it('sees /sys/firmware/efi and sums the DIMMs', async () => {
    const { facts } = await collect(captureRunner('qemu-uefi'), captureFs('qemu-uefi'));
    expect(facts.firmware.bootMode).toBe('uefi');
    expect(facts.memory).toEqual({ totalBytes: 16 * 1024 * MiB + 2560 * MiB, source: 'smbios' });
    expect(facts.system.serial).toBe('To Be Filled By O.E.M.');
  });
});

describe('collectFacts when things are missing or failing', () => {
  it('degrades on a machine without SMBIOS or BMC (host captures): memory from MemTotal, no identity', async () => {
    const { facts, problems } = await collect(captureRunner('host'), captureFs('host'));
    expect(facts.system).toEqual({ uuid: null, serial: null, assetTag: null, manufacturer: null, productName: null });
    expect(facts.memory).toEqual({ totalBytes: 24682416 * 1024, source: 'meminfo' });
    expect(facts.bmc).toBeNull();
    expect(facts.disks.map((d) => d.name)).toEqual(['vda']);
    expect(facts.nics.map((n) => n.mac)).toEqual(['02:fc:00:00:00:01']);
    expect(problems.map((p) => p.source)).toEqual(['dmidecode', '/sys/class/dmi/id']);
    expect(problems[0]!.message).toMatch(/^dmidecode exited with status 1/);
  });

  it('falls back to /sys/class/dmi/id when dmidecode is not installed', async () => {
    const { facts } = await collect(captureRunner('qemu-bios', { dmidecode: missing('dmidecode') }), captureFs('qemu-bios'));
    // Values of the dmi-id-*.txt captures.
    expect(facts.system).toEqual({ uuid: '5a3f0c2e-8b1d-4e6a-9c7f-1d2e3f405162', serial: 'PLN-0001-SN', assetTag: 'ASSET-0042', manufacturer: 'Plinth Test Systems', productName: 'Plinth Lab Node' });
    expect(facts.firmware).toMatchObject({ vendor: 'PlinthLab', version: '1.2.3' });
    // sysfs has no memory devices: MemTotal, and it says so.
    expect(facts.memory).toEqual({ totalBytes: 1497524 * 1024, source: 'meminfo' });
  });

  it('still reports something when no tool at all is installed', async () => {
    const nothing: CommandRunner = async (command) => missing(command);
    const fs = captureFs('qemu-bios', {
      '/proc/cpuinfo': capture('host', 'cpuinfo.txt'),
      '/sys/class/net/eth0/type': '1\n',
      '/sys/class/net/eth0/address': '52:54:00:12:34:01\n',
      '/sys/class/net/eth0/operstate': 'up\n',
      '/sys/class/net/eth0/device/vendor': '0x1af4\n',
      '/sys/class/net/lo/type': '772\n',
      '/sys/class/net/lo/address': '00:00:00:00:00:00\n',
    });
    const { facts, problems } = await collect(nothing, fs);
    expect(facts.cpu).toMatchObject({ architecture: 'unknown', model: 'AMD EPYC', threads: 2 });
    expect(facts.memory.source).toBe('meminfo');
    expect(facts.disks).toEqual([]);
    expect(facts.nics).toEqual([{ name: 'eth0', mac: '52:54:00:12:34:01', driver: null, speedMbps: null, link: true, ipv4: [], ipv6: [] }]);
    expect(facts.system.serial).toBe('PLN-0001-SN');
    expect(facts.bmc).toBeNull();
    expect(problems.map((p) => p.source)).toEqual(expect.arrayContaining(['dmidecode', 'lscpu', 'lsblk ' + LSBLK_ARGS.join(' '), 'ip ' + IP_ADDR_ARGS.join(' '), 'uname -m']));
  });

  it('survives a runner that throws and tools that time out', async () => {
    const run = captureRunner('qemu-bios', {
      lsblk: () => {
        throw new Error('spawn exploded');
      },
      ethtool: { ok: false, reason: 'timeout', exitCode: null, stdout: '', stderr: '', message: 'ethtool did not finish within 30000 ms' },
    });
    const fs: FactsFs = {
      ...captureFs('qemu-bios'),
      readLink: async (path) => (path === '/sys/class/net/eth1/device/driver' ? '../../../../bus/pci/drivers/e1000' : null),
    };
    const { facts, problems } = await collect(run, fs);
    expect(facts.disks).toEqual([]);
    // Without ethtool: link from /sys/class/net/*/carrier, driver from the device's driver link, speed unknown.
    expect(facts.nics.map((n) => [n.name, n.link, n.speedMbps, n.driver])).toEqual([
      ['eth0', true, null, null],
      ['eth1', true, null, 'e1000'],
    ]);
    expect(problems.find((p) => p.source.startsWith('lsblk'))?.message).toContain('spawn exploded');
    expect(problems.filter((p) => p.message.includes('did not finish'))).toHaveLength(4);
  });

  it('reports output a parser cannot read instead of failing', async () => {
    const run = captureRunner('qemu-bios', { ip: { ok: true, stdout: 'ip: unknown option -j' } });
    const fs = captureFs('qemu-bios', { '/sys/class/net/eth1/type': '1\n', '/sys/class/net/eth1/address': '52:54:00:12:34:02\n', '/sys/class/net/eth1/device/x': '' });
    const { facts, problems } = await collect(run, fs);
    expect(problems.find((p) => p.source === 'ip')?.message).toMatch(/unreadable output/);
    // The sysfs fallback still finds the card.
    expect(facts.nics.map((n) => n.mac)).toEqual(['52:54:00:12:34:02']);
  });

  it('survives a filesystem that rejects', async () => {
    const broken: FactsFs = {
      readText: () => Promise.reject(new Error('EIO')),
      exists: () => Promise.reject(new Error('EIO')),
      listDir: () => Promise.reject(new Error('EIO')),
      readLink: () => Promise.reject(new Error('EIO')),
    };
    const { facts } = await collect(captureRunner('qemu-bios'), broken);
    expect(facts.system.serial).toBe('PLN-0001-SN');
    expect(facts.firmware.bootMode).toBe('bios');
  });
});

describe('collectFacts with a BMC', () => {
  it('does not run ipmitool without an IPMI device (no BMC on the host side)', async () => {
    const run = captureRunner('qemu-uefi');
    const { facts, problems } = await collect(run, captureFs('qemu-uefi'));
    expect(run.calls.filter((c) => c.startsWith('ipmitool'))).toEqual([]);
    expect(problems.map((p) => p.source)).not.toContain('ipmitool lan print');
    expect(facts.bmc).toBeNull();
  });

  it('reads lan print, then finds the first channel with access settings', async () => {
    const channelInfo = (args: readonly string[]): CommandResult => {
      if (args[0] === 'lan') return { ok: true, stdout: shared('hardware-samples/ipmi_lan_info') };
      const n = Number(args[2]);
      if (n === 0) return { ok: true, stdout: 'Channel 0x0 info:\n  Channel Medium Type   : IPMB (I2C)\n' };
      if (n === 1) return { ok: false, reason: 'failed', exitCode: 1, stdout: '', stderr: 'Invalid channel: 1', message: 'exit 1' };
      return { ok: true, stdout: `Channel 0x${n} info:\n  Channel Medium Type   : 802.3 LAN\n  Volatile(active) Settings\n  Non-Volatile Settings\n` };
    };
    const run = captureRunner('qemu-bios', { ipmitool: channelInfo });
    const { facts } = await collect(run, captureFs('qemu-bios'));
    expect(facts.bmc).toEqual({ ipv4: '10.151.68.13', mac: '00:30:48:f4:4d:83' });
    expect(facts.hw).toContainEqual(['system', 'ipmi', 'channel', '2']);
    expect(run.calls.filter((c) => c.startsWith('ipmitool'))).toEqual(['ipmitool lan print', 'ipmitool channel info 0', 'ipmitool channel info 1', 'ipmitool channel info 2']);
  });
});
