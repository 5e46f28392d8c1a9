/**
 * A real IPMI 2.0 BMC without identity: pyghmi's `pyghmi.ipmi.bmc.Bmc` (Debian
 * `python3-pyghmi`, the base of OpenStack's VirtualBMC), serving RMCP+ on a loopback UDP port.
 * It answers power and boot-device commands and, like many BMCs in front of virtual machines,
 * has no FRU and no System GUID (both answer "invalid command") unless `guid` gives one. What it
 * was told is kept in a state directory the test reads back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDebianPackages, hasCommand } from './debian-packages.js';
import { freeUdpPort, loopbackBmc, stateReader, type LoopbackBmc } from './ipmi-sim.js';

/** Debian's interpreter: pyghmi is installed for it, not for another python3 on PATH. */
const PYTHON = '/usr/bin/python3';

const BMC_SCRIPT = `
import os, sys
import pyghmi.ipmi.bmc as bmc

state, port, user, password, guid = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

def read(name, default):
    try:
        with open(os.path.join(state, name)) as f:
            return f.read().strip()
    except FileNotFoundError:
        return default

def write(name, value):
    with open(os.path.join(state, name), 'w') as f:
        f.write(value + '\\n')
    with open(os.path.join(state, 'calls.log'), 'a') as f:
        f.write(name + ' ' + value + '\\n')

class PeerBmc(bmc.Bmc):
    def get_power_state(self):
        return read('power', 'off')
    def power_on(self):
        write('power', 'on')
    def power_off(self):
        write('power', 'off')
    def power_shutdown(self):
        write('power', 'off')
    def power_reset(self):
        write('power', 'on')
    def power_cycle(self):
        write('power', 'on')
    def get_boot_device(self):
        return read('boot', 'default')
    def set_boot_device(self, bootdevice):
        write('boot', bootdevice)
    def handle_raw_request(self, request, session):
        # Get System GUID (IPMI 2.0 22.14): the 16 bytes as given, when given.
        if guid and request['netfn'] == 6 and request['command'] == 0x37:
            return session.send_ipmi_response(data=list(bytes.fromhex(guid)))
        return super().handle_raw_request(request, session)

PeerBmc({user: password}, port=port, address='127.0.0.1')
print('ready', flush=True)
bmc.Bmc.listen()
`;

/** host, port, `host:port` (the provider's endpoint address), username and password. */
export interface PyghmiBmcPeer extends LoopbackBmc {
  power(): 'on' | 'off';
  /** pyghmi's name of the boot device it was last told (network, hd, default…). */
  bootDevice(): string;
  /** Every change, oldest first (`power on`, `boot network`…). */
  calls(): string[];
  close(): Promise<void>;
}

export interface PyghmiBmcOptions {
  username?: string;
  password?: string;
  /** The System GUID's 16 bytes as the BMC sends them (32 hex digits); none by default. */
  guid?: string;
}

export async function startPyghmiBmc(options: PyghmiBmcOptions = {}): Promise<PyghmiBmcPeer> {
  const present = () => hasCommand('ipmitool') && existsSync('/usr/lib/python3/dist-packages/pyghmi/ipmi/bmc.py');
  ensureDebianPackages(['python3-pyghmi', 'ipmitool'], present);
  const username = options.username ?? 'admin';
  const password = options.password ?? 'pyghmi-pass';
  const dir = mkdtempSync(join(tmpdir(), 'plinth-pyghmi-'));
  const script = join(dir, 'bmc.py');
  writeFileSync(script, BMC_SCRIPT);
  const port = await freeUdpPort();
  const child: ChildProcess = spawn(PYTHON, [script, dir, String(port), username, password, options.guid ?? ''], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      output += d.toString();
      if (output.includes('ready')) resolve();
    });
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    child.once('exit', (code) => reject(new Error(`the pyghmi BMC exited (${code}) before it was ready: ${output.trim()}`)));
  });
  try {
    await ready;
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const read = stateReader(dir);
  return {
    ...loopbackBmc(port, username, password),
    power: () => (read('power') === 'on' ? 'on' : 'off'),
    bootDevice: () => read('boot') ?? 'default',
    calls: () => (read('calls.log') ?? '').split('\n').filter(Boolean),
    close: async () => {
      child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
