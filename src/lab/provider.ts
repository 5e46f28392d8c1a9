import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { QmpClient } from './qmp.js';
import { qemuCommand, Vm, vmPaths, type VmSpec } from './vm.js';
import {
  ProviderError,
  type BootDevice,
  type BootOptions,
  type Capability,
  type DiscoveredSystem,
  type Endpoint,
  type ForwardedPort,
  type ManagementInterface,
  type PowerInterface,
  type PowerState,
  type PowerTarget,
  type Provider,
  type ProviderContext,
} from '../providers/types.js';

/**
 * The `qemu` provider: Plinth's own lab. An appliance's address is a lab directory holding one
 * `NAME.json` VM definition per machine (see `plinth lab create`). Powering on starts QEMU
 * detached (it outlives the controller), power state is whether its QMP socket answers, and
 * the boot device is kept in `run/NAME.boot.json`, applied when QEMU next starts — as a BMC
 * applies a boot override at the next power-on.
 */
const CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>(['power', 'power.soft-off', 'boot.pxe', 'boot.disk', 'boot.persistent', 'enumerate']);

export interface LabBootOverride {
  device: BootDevice;
  persistent: boolean;
}

export class LabDir {
  constructor(readonly dir: string) {}
  get runDir(): string {
    return join(this.dir, 'run');
  }
  path(name: string): string {
    return join(this.dir, `${name}.json`);
  }
  names(): string[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -5))
      .sort();
  }
  read(name: string): VmSpec {
    if (!/^[A-Za-z0-9._-]+$/.test(name) || !existsSync(this.path(name))) {
      throw new ProviderError('qemu', 'not-found', `no lab VM '${name}' in ${this.dir}`);
    }
    return JSON.parse(readFileSync(this.path(name), 'utf8')) as VmSpec;
  }
  write(spec: VmSpec): void {
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(this.path(spec.name), JSON.stringify(spec, null, 2) + '\n');
  }
  remove(name: string): void {
    rmSync(this.path(name), { force: true });
    for (const f of readdirSync(this.runDir, { withFileTypes: true }).filter((e) => e.name.startsWith(`${name}.`))) rmSync(join(this.runDir, f.name), { force: true });
  }
  bootOverride(name: string): LabBootOverride | null {
    const p = join(this.runDir, `${name}.boot.json`);
    return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as LabBootOverride) : null;
  }
  setBootOverride(name: string, o: LabBootOverride | null): void {
    mkdirSync(this.runDir, { recursive: true });
    const p = join(this.runDir, `${name}.boot.json`);
    if (o) writeFileSync(p, JSON.stringify(o));
    else rmSync(p, { force: true });
  }
}

const orderFor = (device: BootDevice): ('network' | 'disk')[] => (device === 'disk' ? ['disk', 'network'] : ['network', 'disk']);

async function qmp<T>(spec: VmSpec, runDir: string, command: string, timeoutMs: number): Promise<T> {
  const client = await QmpClient.connect(vmPaths(spec, { dir: runDir }).qmp, Math.min(timeoutMs, 3000));
  try {
    return (await client.execute(command)) as T;
  } finally {
    client.close();
  }
}

async function isRunning(spec: VmSpec, runDir: string): Promise<boolean> {
  if (!existsSync(vmPaths(spec, { dir: runDir }).qmp)) return false;
  try {
    await qmp(spec, runDir, 'query-status', 2000);
    return true;
  } catch {
    return false;
  }
}

/**
 * The host side of a guest port: QEMU's user network (slirp) forwards 127.0.0.1:hostPort to
 * it. A NIC on a tap interface has no forward (its guest is reached on that network).
 */
export function forwardOf(spec: VmSpec, guestPort: number): ForwardedPort | null {
  for (const nic of spec.nics ?? []) {
    if (nic.tap) continue;
    const f = nic.hostForwards?.find((x) => x.guestPort === guestPort);
    if (f) return { address: '127.0.0.1', port: f.hostPort };
  }
  return null;
}

export class LabProvider implements Provider {
  readonly type = 'qemu' as const;
  readonly capabilities = CAPABILITIES;
  readonly lab: LabDir;
  readonly power: PowerInterface;
  readonly management: ManagementInterface;

  /** `launcher`: a command put in front of QEMU (tests: `setpriv --pdeathsig KILL --`, see VmRuntime). */
  constructor(
    endpoint: Endpoint,
    private readonly options: { launcher?: string[] } = {},
  ) {
    this.lab = new LabDir(endpoint.address);
    const self = this;
    this.power = {
      async getPowerState(ref) {
        return (await isRunning(self.lab.read(ref), self.lab.runDir)) ? 'on' : 'off';
      },
      async setPowerState(ref, target: PowerTarget, ctx) {
        const spec = self.lab.read(ref);
        const on = await isRunning(spec, self.lab.runDir);
        if (target === 'on') {
          if (!on) await self.start(spec, ctx);
        } else if (on) {
          await qmp(spec, self.lab.runDir, target === 'off' ? 'quit' : 'system_powerdown', ctx.timeoutMs).catch(() => undefined);
          if (target === 'off') await self.waitStopped(spec, ctx.timeoutMs);
        }
      },
      async reboot(ref, ctx) {
        const spec = self.lab.read(ref);
        if (await isRunning(spec, self.lab.runDir)) {
          // A boot override only takes effect when QEMU starts with the new order.
          if (self.lab.bootOverride(ref)) {
            await qmp(spec, self.lab.runDir, 'quit', ctx.timeoutMs).catch(() => undefined);
            await self.waitStopped(spec, ctx.timeoutMs);
            await self.start(spec, ctx);
          } else {
            await qmp(spec, self.lab.runDir, 'system_reset', ctx.timeoutMs);
          }
        } else {
          await self.start(spec, ctx);
        }
      },
    };
    this.management = {
      async setBootDevice(ref, device: BootDevice, options: BootOptions) {
        if (device !== 'pxe' && device !== 'disk') throw new ProviderError('qemu', 'unsupported', `lab VMs boot from the network or disk, not ${device}`);
        self.lab.read(ref);
        self.lab.setBootOverride(ref, { device, persistent: Boolean(options.persistent) });
      },
      async listSystems(): Promise<DiscoveredSystem[]> {
        const out: DiscoveredSystem[] = [];
        for (const name of self.lab.names()) {
          const spec = self.lab.read(name);
          const powerState: PowerState = (await isRunning(spec, self.lab.runDir)) ? 'on' : 'off';
          out.push({
            ref: name,
            name,
            ...(spec.smbios?.uuid ? { systemUuid: spec.smbios.uuid } : {}),
            ...(spec.smbios?.serial ? { serial: spec.smbios.serial } : {}),
            ...(spec.smbios?.manufacturer ? { manufacturer: spec.smbios.manufacturer } : {}),
            ...(spec.smbios?.product ? { productName: spec.smbios.product } : {}),
            macs: (spec.nics ?? []).map((n) => n.mac),
            powerState,
          });
        }
        return out;
      },
      async forwardedPort(ref, guestPort) {
        return forwardOf(self.lab.read(ref), guestPort);
      },
    };
  }

  /** Starts QEMU detached with the boot order of the pending override (a one-time override is consumed). */
  private async start(spec: VmSpec, ctx: ProviderContext): Promise<void> {
    const override = this.lab.bootOverride(spec.name);
    const effective: VmSpec = override ? { ...spec, bootOrder: orderFor(override.device) } : spec;
    if (override && !override.persistent) this.lab.setBootOverride(spec.name, null);
    const rt = { dir: this.lab.runDir, ...(this.options.launcher ? { launcher: this.options.launcher } : {}) };
    const vm = new Vm(effective, rt);
    await vm.prepare();
    const paths = vm.paths;
    rmSync(paths.qmp, { force: true });
    const out = openSync(join(this.lab.runDir, `${spec.name}.qemu.log`), 'a');
    try {
      const [program, args] = qemuCommand(effective, rt, ['-pidfile', join(this.lab.runDir, `${spec.name}.pid`)]);
      const child = spawn(program, args, {
        detached: true,
        stdio: ['ignore', out, out],
      });
      child.unref();
    } finally {
      closeSync(out);
    }
    const until = Date.now() + Math.min(ctx.timeoutMs, 15_000);
    while (Date.now() < until) {
      if (await isRunning(spec, this.lab.runDir)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    const log = readFileSync(join(this.lab.runDir, `${spec.name}.qemu.log`), 'utf8').slice(-500);
    throw new ProviderError('qemu', 'protocol', `lab VM ${spec.name} did not start: ${log.trim() || 'no output'}`);
  }

  private async waitStopped(spec: VmSpec, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (!(await isRunning(spec, this.lab.runDir))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new ProviderError('qemu', 'timeout', `lab VM ${spec.name} did not stop`);
  }
}

export const createLabProvider = (endpoint: Endpoint): Provider => new LabProvider(endpoint);
