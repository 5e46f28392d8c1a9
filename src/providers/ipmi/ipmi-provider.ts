/**
 * IPMI 2.0 over the LAN (RMCP+) through `ipmitool`. One endpoint is one BMC is one system:
 * the only system reference is `bmc`.
 *
 * Boot devices are IPMI's boot flags (parameter 5): pxe, disk, cdrom; `persistent` and the
 * UEFI flag (`efiboot`) travel as ipmitool options. IPMI has no "keep the current mode": a
 * request without `mode: 'uefi'` asks for a PC-compatible (legacy) boot, so callers of UEFI
 * machines must pass the mode. There is no HTTP boot and no virtual media in IPMI.
 */
import {
  ProviderError,
  type BootDevice,
  type BootOptions,
  type Capability,
  type DiscoveredSystem,
  type Endpoint,
  type ManagementInterface,
  type PowerInterface,
  type PowerState,
  type PowerTarget,
  type Provider,
  type ProviderContext,
} from '../types.js';
import { isJunk } from '../../core/junk.js';
import { bootdevOutcome, describeBootFlags, IPMI, IpmiTool, ipmiTarget, parseBootFlags, parseFru, parseGuid, parsePowerStatus } from './ipmitool.js';

/** The reference of the one system behind a BMC. */
export const IPMI_SYSTEM_REF = 'bmc';

const CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>(['power', 'power.soft-off', 'boot.pxe', 'boot.disk', 'boot.cd', 'boot.persistent', 'boot.mode', 'boot.read-back', 'enumerate']);

const BOOTDEV: Partial<Record<BootDevice, string>> = { pxe: 'pxe', disk: 'disk', cd: 'cdrom' };

/** ipmitool `chassis power` verbs per target. */
const POWER_VERB: Record<PowerTarget, string> = { on: 'on', off: 'off', 'soft-off': 'soft' };


export class IpmiProvider implements Provider {
  readonly type = 'ipmi' as const;
  readonly capabilities = CAPABILITIES;
  readonly power: PowerInterface;
  readonly management: ManagementInterface;
  private readonly tool: IpmiTool;

  constructor(endpoint: Endpoint) {
    this.tool = new IpmiTool(ipmiTarget(endpoint));
    this.power = {
      getPowerState: (ref, ctx) => this.getPowerState(ref, ctx),
      setPowerState: (ref, target, ctx) => this.setPowerState(ref, target, ctx),
      reboot: (ref, ctx) => this.reboot(ref, ctx),
    };
    this.management = {
      setBootDevice: (ref, device, options, ctx) => this.setBootDevice(ref, device, options, ctx),
      listSystems: (ctx) => this.listSystems(ctx),
    };
  }

  private checkRef(ref: string): void {
    if (ref !== IPMI_SYSTEM_REF) throw new ProviderError(IPMI, 'not-found', `a BMC controls one system, referenced as '${IPMI_SYSTEM_REF}', not '${ref}'`);
  }

  async getPowerState(ref: string, ctx: ProviderContext): Promise<PowerState> {
    this.checkRef(ref);
    const result = await this.tool.check(['chassis', 'power', 'status'], ctx);
    const state = parsePowerStatus(result.stdout);
    if (!state) throw new ProviderError(IPMI, 'protocol', `unexpected answer to 'chassis power status': ${result.stdout.trim().slice(0, 120)}`);
    return state;
  }

  async setPowerState(ref: string, target: PowerTarget, ctx: ProviderContext): Promise<void> {
    const state = await this.getPowerState(ref, ctx);
    if (target === 'on' && state === 'on') return;
    if (target !== 'on' && state === 'off') return;
    await this.tool.check(['chassis', 'power', POWER_VERB[target]], ctx);
  }

  async reboot(ref: string, ctx: ProviderContext): Promise<void> {
    const state = await this.getPowerState(ref, ctx);
    // `power reset` does nothing to a machine that is off; the contract is to power it on.
    await this.tool.check(['chassis', 'power', state === 'off' ? 'on' : 'reset'], ctx);
  }

  async setBootDevice(ref: string, device: BootDevice, options: BootOptions, ctx: ProviderContext): Promise<void> {
    this.checkRef(ref);
    const bootdev = BOOTDEV[device];
    if (!bootdev) throw new ProviderError(IPMI, 'unsupported', `IPMI has no boot device for ${device}`);
    // NOTE: a BMC clears the boot flags' valid bit when no chassis control command follows
    // within 60 seconds (IPMI 2.0 §28.12); a power job may come later than that. Boot option
    // parameter 3 = 0x08 stops that timer, as Ironic and pyghmi send before every boot device.
    const timer = await this.tool.run(['raw', '0x00', '0x08', '0x03', '0x08'], ctx);
    if (timer.exitCode !== 0) ctx.log.warn('ipmi: the BMC refused to stop its 60-second boot flag timer', { bmc: this.tool.target.host });
    const flags: string[] = [];
    if (options.persistent) flags.push('persistent');
    if (options.mode === 'uefi') flags.push('efiboot');
    const args = ['chassis', 'bootdev', bootdev, ...(flags.length ? [`options=${flags.join(',')}`] : [])];
    const result = await this.tool.run(args, ctx);
    if (result.exitCode !== 0 && !/Set Chassis Boot Parameter/i.test(result.stderr)) throw this.tool.failure(args, result);
    const outcome = bootdevOutcome(result, bootdev);
    if (!outcome.ok) {
      throw new ProviderError(IPMI, outcome.unsupported ? 'unsupported' : 'protocol', `${this.tool.target.host}: the BMC rejected '${args.join(' ')}': ${outcome.detail}`);
    }
    await this.checkBootFlags(bootdev, options, ctx);
  }

  /**
   * Reads the boot flags back: a BMC may accept the parameter and keep something else
   * (ipmi_sim keeps only the device, and reports next boot only, legacy, after a persistent
   * UEFI request). The device must match; persistence must match; the UEFI flag must match
   * when a mode was asked for. The valid bit is not compared: ipmi_sim reports it clear
   * while acting on the device, and the timer stopped above keeps it on a real BMC.
   */
  private async checkBootFlags(bootdev: string, options: BootOptions, ctx: ProviderContext): Promise<void> {
    const read = await this.tool.check(['chassis', 'bootparam', 'get', '5'], ctx);
    const kept = parseBootFlags(read.stdout);
    if (!kept) throw new ProviderError(IPMI, 'protocol', `${this.tool.target.host}: unexpected answer to 'chassis bootparam get 5': ${read.stdout.trim().slice(0, 120)}`);
    const wanted = { device: bootdev, persistent: Boolean(options.persistent), efi: options.mode === 'uefi' };
    const asked = describeBootFlags(wanted);
    if (kept.device !== bootdev) {
      throw new ProviderError(IPMI, 'protocol', `${this.tool.target.host}: the BMC accepted boot flags ${asked} but kept ${describeBootFlags(kept)}`);
    }
    if (kept.persistent !== wanted.persistent || (options.mode !== undefined && kept.efi !== wanted.efi)) {
      // The device was taken, the flag dropped: this BMC does not offer what was asked.
      throw new ProviderError(IPMI, 'unsupported', `${this.tool.target.host}: the BMC accepted boot flags ${asked} but kept ${describeBootFlags(kept)}`);
    }
  }

  /** The one system: the BMC's System GUID and the FRU's identity when readable. */
  async listSystems(ctx: ProviderContext): Promise<DiscoveredSystem[]> {
    const system: DiscoveredSystem = { ref: IPMI_SYSTEM_REF, macs: [] };
    system.powerState = await this.getPowerState(IPMI_SYSTEM_REF, ctx);
    const guid = await this.tool.run(['mc', 'guid'], ctx);
    const uuid = guid.exitCode === 0 ? parseGuid(guid.stdout) : undefined;
    if (uuid && !/^0{8}-0{4}-0{4}-0{4}-0{12}$|^f{8}-f{4}-f{4}-f{4}-f{12}$/.test(uuid)) system.systemUuid = uuid;
    // Many BMCs (and simulators) have no FRU 0: identity then rests on the GUID alone.
    const fru = await this.tool.run(['fru', 'print', '0'], ctx);
    if (fru.exitCode === 0) {
      const f = parseFru(fru.stdout);
      const pick = (...keys: string[]): string | undefined => keys.map((k) => f[k]).find((v) => v !== undefined && !isJunk(v));
      const serial = pick('Product Serial', 'Chassis Serial', 'Board Serial');
      const manufacturer = pick('Product Manufacturer', 'Board Mfg');
      const productName = pick('Product Name', 'Board Product');
      if (serial) system.serial = serial;
      if (manufacturer) system.manufacturer = manufacturer;
      if (productName) system.productName = productName;
    }
    return [system];
  }
}

export function createIpmiProvider(endpoint: Endpoint): IpmiProvider {
  return new IpmiProvider(endpoint);
}
