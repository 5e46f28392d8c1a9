import type { Facts } from '../../core/facts.js';
import { isUselessMac, normalizeMac } from '../../core/mac.js';
import { assembleFacts, type InspectionInputs, type NicInputs } from './assemble.js';
import type { CommandResult, CommandRunner } from './command-runner.js';
import { parseCpuinfo } from './cpuinfo.js';
import { parseDmidecode, type DmiInfo } from './dmidecode.js';
import { parseEthtool, parseEthtoolDriver } from './ethtool.js';
import type { FactsFs } from './facts-fs.js';
import { IP_ADDR_ARGS, parseIpAddr, type NetInterface } from './ip-addr.js';
import { channelHasAccessSettings, parseIpmiLanPrint, type IpmiLan } from './ipmitool.js';
import { parseLscpu } from './lscpu.js';
import { LSBLK_ARGS, isInstallableDisk, parseLsblk, type BlockDevice } from './lsblk.js';
import { LSPCI_ARGS, parseLspci, type PciDevice } from './lspci.js';
import { parseMemTotalBytes } from './meminfo.js';
import { readSysfsDmi } from './sysfs-dmi.js';
import { detectBootMode } from './boot-mode.js';

/** Something the inspection could not read; the facts are still produced, with less in them. */
export interface InspectionProblem {
  /** The tool or file: "dmidecode", "ethtool eth0", "/proc/meminfo". */
  source: string;
  message: string;
}

export interface CollectOptions {
  /** Told about each degraded source, for the agent's log. */
  onProblem?: (problem: InspectionProblem) => void;
}

/**
 * The host side of a BMC (the kernel's ipmi_devintf; the paths ipmitool's open interface
 * tries). Without one there is no BMC to ask, and ipmitool is not run.
 */
const IPMI_DEVICES = ['/dev/ipmi0', '/dev/ipmi/0', '/dev/ipmidev/0'];

/** IPMI channels are numbered 0 to 15; eDeploy probed them in order. */
const IPMI_CHANNELS = 16;

/**
 * Inspects the machine the agent runs on. Never rejects because of the machine: a missing
 * tool, a failing command, a runner that throws or unparsable output each cost the facts
 * that source would have given (falling back to sysfs / procfs where one exists), and are
 * reported through `onProblem`.
 */
export async function collectFacts(run: CommandRunner, givenFs: FactsFs, options: CollectOptions = {}): Promise<Facts> {
  const fs = tolerantFs(givenFs);
  const report = (source: string, message: string): void => options.onProblem?.({ source, message });

  /** stdout of a successful run, or null (reported). */
  const output = async (command: string, args: readonly string[]): Promise<string | null> => {
    const source = [command, ...args].join(' ');
    let result: CommandResult;
    try {
      result = await run(command, args);
    } catch (error) {
      report(source, `runner failed: ${(error as Error).message}`);
      return null;
    }
    if (result.ok) return result.stdout;
    const detail = result.stderr.trim().split('\n')[0];
    report(source, detail ? `${result.message}: ${detail}` : result.message);
    return null;
  };

  /** Parses tool output, reporting (not throwing) output the parser rejects. */
  const parse = <T>(source: string, text: string | null, parser: (text: string) => T): T | null => {
    if (text === null) return null;
    try {
      return parser(text);
    } catch (error) {
      report(source, `unreadable output: ${(error as Error).message}`);
      return null;
    }
  };

  const [dmi, cpu, memTotalBytes, blockDevices, interfaces, pciDevices, ipmi, uefi] = await Promise.all([
    collectDmi(),
    collectCpu(),
    fs.readText('/proc/meminfo').then((text) => (text === null ? null : parseMemTotalBytes(text))),
    collectDisks(),
    collectInterfaces(),
    output('lspci', LSPCI_ARGS).then((text) => parse('lspci', text, parseLspci) ?? ([] as PciDevice[])),
    collectIpmi(),
    detectBootMode(fs).then((mode) => mode === 'uefi'),
  ]);
  const nics = await Promise.all(interfaces.map(collectNic));

  const inputs: InspectionInputs = { dmi, ...cpu, memTotalBytes, blockDevices, nics, pciDevices, ipmi, uefi };
  return assembleFacts(inputs);

  async function collectDmi(): Promise<DmiInfo | null> {
    const parsed = parse('dmidecode', await output('dmidecode', []), parseDmidecode);
    if (parsed?.system) return parsed;
    const fromSysfs = await readSysfsDmi(fs);
    if (fromSysfs === null && parsed === null) report('/sys/class/dmi/id', 'no SMBIOS information on this machine');
    if (fromSysfs === null) return parsed;
    // dmidecode ran but found no system record: keep whatever tables it did read.
    return parsed ? { ...fromSysfs, processors: parsed.processors, memoryArrays: parsed.memoryArrays, memoryDevices: parsed.memoryDevices, ipmi: parsed.ipmi } : fromSysfs;
  }

  async function collectCpu(): Promise<Pick<InspectionInputs, 'lscpu' | 'cpuinfo' | 'machineArchitecture'>> {
    const lscpu = parse('lscpu', await output('lscpu', []), parseLscpu);
    if (lscpu?.architecture) return { lscpu, cpuinfo: null, machineArchitecture: null };
    const [cpuinfoText, uname] = await Promise.all([fs.readText('/proc/cpuinfo'), output('uname', ['-m'])]);
    return {
      lscpu,
      cpuinfo: cpuinfoText === null ? null : parseCpuinfo(cpuinfoText),
      machineArchitecture: uname?.trim() || null,
    };
  }

  async function collectDisks(): Promise<BlockDevice[]> {
    const devices = parse('lsblk', await output('lsblk', LSBLK_ARGS), parseLsblk) ?? [];
    // NOTE: without udev (a bare installer) lsblk knows no serial or WWN; the kernel has
    // them in sysfs for virtio (serial), NVMe (device/serial, device/wwid) and SCSI (device/wwid).
    return Promise.all(
      devices.map(async (d) => {
        if (!isInstallableDisk(d) || (d.serial !== null && d.wwn !== null)) return d;
        const base = `/sys/block/${d.name}`;
        const serial = d.serial ?? firstLine(await fs.readText(`${base}/serial`)) ?? firstLine(await fs.readText(`${base}/device/serial`));
        const wwn = d.wwn ?? wwnFromWwid(firstLine(await fs.readText(`${base}/device/wwid`)));
        return { ...d, serial, wwn };
      }),
    );
  }

  async function collectInterfaces(): Promise<NetInterface[]> {
    const parsed = parse('ip', await output('ip', IP_ADDR_ARGS), parseIpAddr);
    if (parsed !== null) return parsed;
    return interfacesFromSysfs(fs);
  }

  async function collectNic(iface: NetInterface): Promise<NicInputs> {
    const [linkText, driverText, carrierText, driverLink] = await Promise.all([
      output('ethtool', [iface.name]),
      output('ethtool', ['-i', iface.name]),
      fs.readText(`/sys/class/net/${iface.name}/carrier`),
      fs.readLink(`/sys/class/net/${iface.name}/device/driver`),
    ]);
    const carrier = firstLine(carrierText);
    return {
      iface,
      ethtool: parse(`ethtool ${iface.name}`, linkText, parseEthtool),
      driver: parse(`ethtool -i ${iface.name}`, driverText, parseEthtoolDriver),
      carrier: carrier === '1' ? true : carrier === '0' ? false : null,
      sysfsDriver: driverLink === null ? null : (driverLink.split('/').pop() ?? null),
    };
  }

  async function collectIpmi(): Promise<{ lan: IpmiLan; channel: number | null } | null> {
    const devices = await Promise.all(IPMI_DEVICES.map((d) => fs.exists(d)));
    if (!devices.includes(true)) return null;
    const lan = parse('ipmitool lan print', await output('ipmitool', ['lan', 'print']), parseIpmiLanPrint);
    if (lan === null) return null;
    let channel: number | null = null;
    for (let n = 0; n < IPMI_CHANNELS && channel === null; n++) {
      const result = await run('ipmitool', ['channel', 'info', String(n)]).catch(() => null);
      // Channels that do not exist fail; that is the expected answer, not a problem.
      if (result?.ok && channelHasAccessSettings(result.stdout)) channel = n;
    }
    return { lan, channel };
  }
}

/** The same filesystem, with a rejecting method read as "not there" (the contract, enforced). */
function tolerantFs(fs: FactsFs): FactsFs {
  return {
    readText: (path) => fs.readText(path).catch(() => null),
    exists: (path) => fs.exists(path).catch(() => false),
    listDir: (path) => fs.listDir(path).catch(() => null),
    readLink: (path) => fs.readLink(path).catch(() => null),
  };
}

function firstLine(text: string | null): string | null {
  if (text === null) return null;
  const line = text.split('\n')[0]!.trim();
  return line === '' ? null : line;
}

/** sysfs wwid "naa.5000c500a1b2c3d4" is what lsblk (through udev) prints as "0x5000c500a1b2c3d4". */
function wwnFromWwid(wwid: string | null): string | null {
  if (wwid === null) return null;
  return wwid.startsWith('naa.') ? `0x${wwid.slice(4)}` : wwid;
}

/** ARPHRD_ETHER in /sys/class/net/NAME/type. */
const ETHERNET_TYPE = '1';

/**
 * Network cards from /sys/class/net when `ip` is missing: Ethernet interfaces backed by a
 * device (virtual interfaces have no `device` link). No addresses: sysfs does not have them.
 */
async function interfacesFromSysfs(fs: FactsFs): Promise<NetInterface[]> {
  const names = (await fs.listDir('/sys/class/net')) ?? [];
  const out: NetInterface[] = [];
  for (const name of names) {
    const base = `/sys/class/net/${name}`;
    const [type, address, operstate, hasDevice] = await Promise.all([
      fs.readText(`${base}/type`),
      fs.readText(`${base}/address`),
      fs.readText(`${base}/operstate`),
      fs.exists(`${base}/device`),
    ]);
    if (firstLine(type) !== ETHERNET_TYPE || !hasDevice) continue;
    const mac = normalizeMac(firstLine(address) ?? '');
    if (mac === null || isUselessMac(mac)) continue;
    const state = firstLine(operstate);
    out.push({ name, mac, operState: state === null ? null : state.toUpperCase(), lowerUp: false, ipv4: [], ipv6: [] });
  }
  return out;
}
