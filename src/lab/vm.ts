import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, copyFileSync, mkdirSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { createConnection, type Socket } from 'node:net';
import { QmpClient } from './qmp.js';

const execFileAsync = promisify(execFile);

/**
 * One QEMU virtual machine of the local lab: what the `qemu` provider powers on and off and
 * what the end-to-end tests boot. Always software emulation (TCG): KVM guests are not
 * reliable on the machines this runs on.
 */
export interface VmDisk {
  path: string;
  /** Created (qcow2, sparse) when the file does not exist. */
  sizeBytes?: number;
  format?: 'qcow2' | 'raw';
  bus?: 'virtio' | 'sata' | 'nvme';
  serial?: string;
}

export interface VmNic {
  mac: string;
  model?: 'virtio-net-pci' | 'e1000';
  /** DHCP boot file handed out by QEMU's user-mode network (e.g. http://10.0.2.2:7708/boot.ipxe). */
  bootUrl?: string;
  /** TCP ports of the host (127.0.0.1) forwarded to the guest. */
  hostForwards?: { hostPort: number; guestPort: number }[];
  /** An existing tap interface (on a bridge) instead of QEMU's user network: the guest sees that network's DHCP. */
  tap?: string;
  /**
   * The NIC's option ROM: unset keeps QEMU's (iPXE), `''` gives the NIC none, so UEFI
   * firmware boots from it with its own network stack (PXE or HTTP boot) instead of iPXE.
   */
  romfile?: string;
}

export interface VmSpec {
  name: string;
  memoryMiB?: number;
  cpus?: number;
  firmware?: 'bios' | 'uefi';
  smbios?: { uuid?: string; serial?: string; manufacturer?: string; product?: string; assetTag?: string };
  disks?: VmDisk[];
  nics?: VmNic[];
  /** Devices in boot order; iPXE's `exit` falls through to the next one. */
  bootOrder?: ('network' | 'disk')[];
  /** Direct kernel boot instead of firmware boot. */
  kernel?: { kernel: string; initrd?: string; append?: string };
  /**
   * The serial console takes input too: a Unix socket (`Vm.serialConsole()`) to type into, its
   * output still logged to the serial log. Default: output only, to the log.
   */
  serialInput?: boolean;
  extraArgs?: string[];
}

export interface VmRuntime {
  /** Directory for the QMP socket, serial log and UEFI variable store. */
  dir: string;
  qemuBinary?: string;
  /**
   * Command put in front of QEMU, e.g. `setpriv --pdeathsig KILL --`: tests use it so that
   * QEMU dies with the process that started it, even when that one is killed.
   */
  launcher?: string[];
}

/** The program and arguments that start QEMU for `spec` (with the runtime's launcher in front). */
export function qemuCommand(spec: VmSpec, rt: VmRuntime, extra: string[] = []): [string, string[]] {
  const argv = [...(rt.launcher ?? []), rt.qemuBinary ?? 'qemu-system-x86_64', ...qemuArgs(spec, rt), ...extra];
  return [argv[0]!, argv.slice(1)];
}

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

/** QEMU's -smbios/-netdev option values double commas to escape them. */
const esc = (v: string): string => v.replaceAll(',', ',,');

export function vmPaths(spec: VmSpec, rt: VmRuntime) {
  return {
    qmp: join(rt.dir, `${spec.name}.qmp`),
    serial: join(rt.dir, `${spec.name}.serial.log`),
    serialSocket: join(rt.dir, `${spec.name}.serial.sock`),
    vars: join(rt.dir, `${spec.name}.OVMF_VARS.fd`),
  };
}

/** The QEMU command line for a VM (pure: tests assert on it). */
export function qemuArgs(spec: VmSpec, rt: VmRuntime): string[] {
  const p = vmPaths(spec, rt);
  const args = [
    '-name', spec.name,
    '-machine', 'q35',
    '-accel', 'tcg',
    '-m', String(spec.memoryMiB ?? 1024),
    '-smp', String(spec.cpus ?? 1),
    '-display', 'none',
    '-monitor', 'none',
    ...(spec.serialInput
      ? ['-chardev', `socket,id=serial0,path=${p.serialSocket},server=on,wait=off,logfile=${p.serial}`, '-serial', 'chardev:serial0']
      : ['-serial', `file:${p.serial}`]),
    '-qmp', `unix:${p.qmp},server=on,wait=off`,
  ];
  if ((spec.firmware ?? 'bios') === 'uefi') {
    args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`);
    args.push('-drive', `if=pflash,format=raw,unit=1,file=${p.vars}`);
  }
  const s = spec.smbios;
  if (s) {
    const t1 = [
      s.manufacturer && `manufacturer=${esc(s.manufacturer)}`,
      s.product && `product=${esc(s.product)}`,
      s.serial && `serial=${esc(s.serial)}`,
      s.uuid && `uuid=${s.uuid}`,
    ].filter(Boolean);
    if (t1.length) args.push('-smbios', `type=1,${t1.join(',')}`);
    if (s.assetTag) args.push('-smbios', `type=3,asset=${esc(s.assetTag)}`);
  }
  const order = spec.bootOrder ?? ['network', 'disk'];
  const bootIndex = (kind: 'network' | 'disk', i: number) => {
    const pos = order.indexOf(kind);
    return pos < 0 ? '' : `,bootindex=${pos * 10 + i + 1}`;
  };
  (spec.nics ?? []).forEach((nic, i) => {
    const netdev = nic.tap ? [`tap,id=n${i},ifname=${nic.tap},script=no,downscript=no`] : [`user,id=n${i}`];
    if (nic.bootUrl) netdev.push(`bootfile=${esc(nic.bootUrl)}`);
    for (const f of nic.hostForwards ?? []) netdev.push(`hostfwd=tcp:127.0.0.1:${f.hostPort}-:${f.guestPort}`);
    args.push('-netdev', netdev.join(','));
    const rom = nic.romfile === undefined ? '' : `,romfile=${esc(nic.romfile)}`;
    args.push('-device', `${nic.model ?? 'virtio-net-pci'},netdev=n${i},mac=${nic.mac}${rom}${bootIndex('network', i)}`);
  });
  (spec.disks ?? []).forEach((d, i) => {
    args.push('-drive', `file=${d.path},if=none,id=d${i},format=${d.format ?? 'qcow2'},cache=unsafe`);
    const serial = d.serial ? `,serial=${esc(d.serial)}` : '';
    const bus = d.bus ?? 'virtio';
    const device = bus === 'virtio' ? 'virtio-blk-pci' : bus === 'nvme' ? 'nvme' : 'ide-hd';
    args.push('-device', `${device},drive=d${i}${serial}${bootIndex('disk', i)}`);
  });
  if (spec.kernel) {
    args.push('-kernel', spec.kernel.kernel);
    if (spec.kernel.initrd) args.push('-initrd', spec.kernel.initrd);
    if (spec.kernel.append) args.push('-append', spec.kernel.append);
  }
  args.push(...(spec.extraArgs ?? []));
  return args;
}

export class Vm {
  readonly spec: VmSpec;
  readonly rt: VmRuntime;
  private child: ChildProcess | null = null;
  private exitPromise: Promise<number | null> | null = null;
  private stderr = '';

  constructor(spec: VmSpec, rt: VmRuntime) {
    this.spec = spec;
    this.rt = rt;
  }

  get paths() {
    return vmPaths(this.spec, this.rt);
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Creates missing disks and the UEFI variable store. */
  async prepare(): Promise<void> {
    mkdirSync(this.rt.dir, { recursive: true });
    for (const d of this.spec.disks ?? []) {
      if (!existsSync(d.path)) {
        mkdirSync(dirname(d.path), { recursive: true });
        await execFileAsync('qemu-img', ['create', '-q', '-f', d.format ?? 'qcow2', d.path, String(d.sizeBytes ?? 4 * 2 ** 30)]);
      }
    }
    if ((this.spec.firmware ?? 'bios') === 'uefi' && !existsSync(this.paths.vars)) copyFileSync(OVMF_VARS, this.paths.vars);
  }

  /** Powers the VM on (starts QEMU). Idempotent. */
  async start(): Promise<void> {
    if (this.running) return;
    await this.prepare();
    const [program, args] = qemuCommand(this.spec, this.rt);
    const child = spawn(program, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr = (this.stderr + d).slice(-4000)));
    this.exitPromise = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    this.child = child;
    // Fail fast on bad arguments: QEMU exits at once.
    const early = await Promise.race([this.exitPromise, new Promise((r) => setTimeout(() => r('running'), 300))]);
    if (early !== 'running') throw new Error(`qemu for ${this.spec.name} exited at start: ${this.stderr.trim()}`);
  }

  async qmp<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    const client = await QmpClient.connect(this.paths.qmp);
    try {
      return (await client.execute(command, args)) as T;
    } finally {
      client.close();
    }
  }

  /** Hard reset (the reset button). */
  async reset(): Promise<void> {
    await this.qmp('system_reset');
  }

  /** ACPI power button: the guest OS shuts down on its own. */
  async powerButton(): Promise<void> {
    await this.qmp('system_powerdown');
  }

  /** Pulls the plug. Idempotent. */
  async stop(): Promise<void> {
    if (!this.child) return;
    const child = this.child;
    if (this.running) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await this.exitPromise;
      clearTimeout(t);
    }
    this.child = null;
  }

  /** Resolves with the exit code when QEMU ends (the guest powered off). */
  async waitForExit(timeoutMs: number): Promise<number | null> {
    if (!this.exitPromise) return null;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.spec.name} still running after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exitPromise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Types into the serial console of a VM started with `serialInput`. What the guest writes
   * back is read and dropped here (the serial log has it), so the guest's UART never stalls.
   */
  async serialConsole(): Promise<{ type(text: string): void; close(): void }> {
    if (!this.spec.serialInput) throw new Error(`${this.spec.name} was started without serialInput`);
    const connect = () =>
      new Promise<Socket>((resolve, reject) => {
        const s = createConnection(this.paths.serialSocket, () => resolve(s));
        s.once('error', reject);
      });
    let socket: Socket | null = null;
    // QEMU makes the socket as it starts, which on a busy machine is after start() returned.
    for (let attempt = 0; !socket; attempt++) {
      try {
        socket = await connect();
      } catch (e) {
        if (!this.running || attempt >= 600) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    return { type: (text) => void socket.write(text), close: () => socket.destroy() };
  }

  /** Everything the guest wrote to its serial console so far. */
  serialOutput(): string {
    const path = this.paths.serial;
    if (!existsSync(path)) return '';
    const size = statSync(path).size;
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.alloc(size);
      readSync(fd, buf, 0, size, 0);
      return buf.toString('utf8');
    } finally {
      closeSync(fd);
    }
  }

  /** Waits until the serial console shows `pattern`; returns the match. */
  async waitForSerial(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.serialOutput().match(pattern);
      if (m) return m;
      if (!this.running) throw new Error(`${this.spec.name} exited before ${pattern} appeared; console tail:\n${this.serialOutput().slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`${this.spec.name}: ${pattern} not seen within ${timeoutMs} ms; console tail:\n${this.serialOutput().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  get lastStderr(): string {
    return this.stderr;
  }
}
