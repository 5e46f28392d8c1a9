/**
 * A real IPMI 2.0 BMC: OpenIPMI's `ipmi_sim` (Debian `openipmi`), serving RMCP+ on a
 * loopback UDP port, with a `chassis_control` script that records what the BMC was told
 * (power, reset, soft shutdown, boot device) in a state directory the test reads back —
 * the "chassis state only" wiring of notes/real-peers.md. Clients use cipher suite 3.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDebianPackages, hasCommand } from './debian-packages.js';

export interface IpmiSimPeer {
  host: string;
  port: number;
  /** `host:port`, the provider's endpoint address. */
  address: string;
  username: string;
  password: string;
  /** What the simulated chassis holds now. */
  power(): 'on' | 'off';
  /** The boot device the BMC was last told (ipmi_sim's words: pxe, default, cdrom…). */
  bootDevice(): string | undefined;
  /** Every chassis_control call, oldest first (`set power 1`, `set reset 1`, `get power`…). */
  calls(): string[];
  /** While on, the chassis takes power commands (the BMC answers success) and does not act on them. */
  ignorePower(on: boolean): void;
  /** While on, the chassis keeps another boot device than the one it is told (the BMC answers success). */
  alterBoot(on: boolean): void;
  /** Freezes the BMC process (SIGSTOP): it stops answering, like a hung BMC. */
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

/** Reads a peer's state files: a file's trimmed text, or undefined while it does not exist. */
export function stateReader(dir: string): (name: string) => string | undefined {
  return (name) => {
    const file = join(dir, name);
    return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
  };
}

/** Where a BMC peer on the loopback answers, and as whom a client logs in. */
export function loopbackBmc(port: number, username: string, password: string) {
  return { host: '127.0.0.1', port, address: `127.0.0.1:${port}`, username, password };
}

export type LoopbackBmc = ReturnType<typeof loopbackBmc>;

/** A UDP port that was free a moment ago on 127.0.0.1. */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

const CHASSIS_SCRIPT = `#!/bin/sh
# ipmi_sim chassis_control: "get <parm>..." prints "<parm>:<value>" lines; "set <parm> <value>..." stores them.
dir="$(dirname "$0")/chassis"
echo "$*" >> "$dir/calls.log"
op=$1; shift
if [ "$op" = get ]; then
  for p in "$@"; do
    case $p in
      boot) v=$(cat "$dir/boot" 2>/dev/null || echo default) ;;
      *) v=$(cat "$dir/$p" 2>/dev/null || echo 0) ;;
    esac
    echo "$p:$v"
  done
else
  if [ -f "$dir/reject-boot" ] && [ "$1" = boot ]; then exit 1; fi
  while [ $# -gt 1 ]; do
    case $1 in
      power) [ -f "$dir/ignore-power" ] || echo "$2" > "$dir/power" ;;
      boot) if [ -f "$dir/alter-boot" ]; then
              if [ "$2" = default ]; then echo pxe > "$dir/boot"; else echo default > "$dir/boot"; fi
            else echo "$2" > "$dir/boot"; fi ;;
      *) : ;;
    esac
    shift 2
  done
fi
`;

export interface IpmiSimOptions {
  username?: string;
  password?: string;
  powerOn?: boolean;
  /** The chassis refuses boot device changes (the BMC answers an error; ipmitool still exits 0). */
  rejectBootDevice?: boolean;
  /**
   * A chassis_control script of the caller's (e.g. one that starts and stops a QEMU VM). It
   * lives beside a `chassis/` directory and must keep `chassis/calls.log` and `chassis/boot`.
   */
  chassisScript?: string;
  /** The BMC's system GUID, 32 hex digits (real BMCs report the host's SMBIOS UUID). */
  guid?: string;
}

export async function startIpmiSim(options: IpmiSimOptions = {}): Promise<IpmiSimPeer> {
  ensureDebianPackages(['openipmi', 'ipmitool'], () => hasCommand('ipmi_sim') && hasCommand('ipmitool'));
  const username = options.username ?? 'admin';
  const password = options.password ?? 'ipmi-pass';
  const dir = mkdtempSync(join(tmpdir(), 'plinth-ipmisim-'));
  const chassis = join(dir, 'chassis');
  mkdirSync(chassis);
  mkdirSync(join(dir, 'state'));
  writeFileSync(join(chassis, 'power'), options.powerOn ? '1\n' : '0\n');
  if (options.rejectBootDevice) writeFileSync(join(chassis, 'reject-boot'), '');
  const script = join(dir, 'chassis.sh');
  writeFileSync(script, options.chassisScript ?? CHASSIS_SCRIPT);
  chmodSync(script, 0o755);
  const port = await freeUdpPort();
  writeFileSync(
    join(dir, 'lan.conf'),
    [
      'name "plinth-test-bmc"',
      'set_working_mc 0x20',
      '  startlan 1',
      `    addr 127.0.0.1 ${port}`,
      '    priv_limit admin',
      '    allowed_auths_admin none md2 md5 straight',
      `    guid ${options.guid ?? 'a123456789abcdefa123456789abcdef'}`,
      '  endlan',
      `  chassis_control "${script}"`,
      `  user 2 true "${username}" "${password}" admin 10 none md2 md5 straight`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'sim.emu'),
    ['mc_setbmc 0x20', 'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr', 'sel_enable 0x20 1000 0x0a', 'mc_enable 0x20', ''].join('\n'),
  );
  const child: ChildProcess = spawn('ipmi_sim', ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'sim.emu'), '-s', join(dir, 'state'), '-n'], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  // Ready when an RMCP+ session can be opened.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const probe = spawn('ipmitool', ['-I', 'lanplus', '-C', '3', '-H', '127.0.0.1', '-p', String(port), '-U', username, '-E', '-N', '1', '-R', '1', 'mc', 'guid'], {
        env: { ...process.env, IPMI_PASSWORD: password },
        stdio: 'ignore',
      });
      probe.once('exit', (code) => resolve(code === 0));
    });
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`ipmi_sim did not come up on port ${port}: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  const read = stateReader(chassis);
  const flag = (name: string, on: boolean): void => {
    if (on) writeFileSync(join(chassis, name), '');
    else rmSync(join(chassis, name), { force: true });
  };
  return {
    ...loopbackBmc(port, username, password),
    power: () => (read('power') === '1' ? 'on' : 'off'),
    bootDevice: () => read('boot'),
    calls: () => (read('calls.log') ?? '').split('\n').filter(Boolean),
    ignorePower: (on) => flag('ignore-power', on),
    alterBoot: (on) => flag('alter-boot', on),
    freeze: () => child.kill('SIGSTOP'),
    thaw: () => child.kill('SIGCONT'),
    close: async () => {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
      // A caller's chassis may have started a machine: stop it with the BMC.
      const pid = read('pid');
      if (pid) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
