/**
 * libvirt peers (Debian `libvirt-clients`, `libvirt-daemon`):
 *
 * 1. **A test driver node file** (`test:///path/node.xml`): libvirt's in-memory hypervisor,
 *    read afresh by every connection — right for inventory, useless for changes, because a
 *    `virsh` process is one connection and its changes die with it.
 * 2. **A real libvirtd serving the test driver** (`test+unix:///default?socket=…`): the
 *    daemon runs in a private mount namespace (tmpfs over /run/libvirt, /var/lib/libvirt and
 *    /var/cache/libvirt, so it touches no host state and no other libvirtd), with its own
 *    socket directory. `test:///default` is shared by all connections of a process while one
 *    stays open, so the peer holds one open `virsh` session: every provider call then sees the
 *    changes of the previous one, and the peer reads the domain back over its own connection.
 *    With the `tcp` option the daemon also listens on a loopback TCP port (`--listen`,
 *    `auth_tcp = "none"`, no TLS): the same test driver is then reached as
 *    `test+tcp://127.0.0.1:PORT/default`, libvirt's remote protocol over TCP.
 *
 * A real libvirtd does what it is told; to see a provider meet one that lies, the daemon peer
 * also writes `virshShim`, a script in front of the real `virsh` (the provider's endpoint
 * option `virsh`) that, while switched on, answers power commands with success without
 * running them (`ignorePower`) or rotates the `<os><boot dev>` order of a definition before
 * handing it to libvirtd (`alterBoot`). Switched off it only `exec`s virsh.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDebianPackages, hasCommand } from './debian-packages.js';
import { DROP_BLOCK_DEVICE_MOUNTS } from '../mount-namespace.js';

export interface TestDomain {
  name: string;
  uuid: string;
  macs: string[];
  /** `os`: `<os><boot dev='hd'/>`; `device`: per-device `<boot order>` (disk first). */
  bootStyle: 'os' | 'device';
  firmware?: 'bios' | 'uefi';
}

export const TEST_DOMAINS: TestDomain[] = [
  { name: 'plinth-os-boot', uuid: '5a0e3b1c-6f2d-4c1e-9a3b-0d6f1e2a3b4c', macs: ['52:54:00:00:aa:01'], bootStyle: 'os' },
  { name: 'plinth-device-boot', uuid: '7c1d2e3f-4a5b-4c6d-8e9f-a0b1c2d3e4f5', macs: ['52:54:00:00:aa:02', '52:54:00:00:aa:03'], bootStyle: 'device' },
];

/** A test-driver domain definition (type='test'). */
export function testDomainXml(d: TestDomain): string {
  const deviceBoot = d.bootStyle === 'device';
  const nics = d.macs
    .map((mac, i) => `    <interface type='network'><mac address='${mac}'/><source network='default'/>${deviceBoot ? `<boot order='${i + 2}'/>` : ''}</interface>`)
    .join('\n');
  return `<domain type='test'>
  <name>${d.name}</name>
  <uuid>${d.uuid}</uuid>
  <memory unit='KiB'>524288</memory>
  <vcpu>1</vcpu>
  <os${d.firmware === 'uefi' ? " firmware='efi'" : ''}>
    <type arch='x86_64'>hvm</type>
${deviceBoot ? '' : "    <boot dev='hd'/>\n"}  </os>
  <devices>
    <disk type='file' device='disk'><source file='/guest/${d.name}.img'/><target dev='vda' bus='virtio'/>${deviceBoot ? "<boot order='1'/>" : ''}</disk>
    <disk type='file' device='cdrom'><target dev='sda' bus='sata'/><readonly/></disk>
${nics}
  </devices>
</domain>
`;
}

export interface TestDriverFile {
  uri: string;
  close(): void;
}

/** Writes a test driver node file holding the domains (stateless: read per connection). */
export function writeTestDriverNode(domains: TestDomain[] = TEST_DOMAINS): TestDriverFile {
  ensureDebianPackages(['libvirt-clients'], () => hasCommand('virsh'));
  const dir = mkdtempSync(join(tmpdir(), 'plinth-libvirt-node-'));
  const path = join(dir, 'node.xml');
  // Domains in a node file start out running.
  writeFileSync(path, `<node>\n${domains.map(testDomainXml).join('\n')}</node>\n`);
  return { uri: `test://${path}`, close: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface LibvirtDaemonPeer {
  /** The test driver, shared by all connections. */
  uri: string;
  /** The test driver over TCP (`test+tcp://127.0.0.1:PORT/default`), with the `tcp` option. */
  tcpUri: string | undefined;
  /** qemu:///system of this daemon (with the `qemu` option). */
  qemuUri: string;
  socket: string;
  domains: TestDomain[];
  /** Runs virsh over the peer's own connection (not the provider's). */
  virsh(...args: string[]): string;
  /** The domain's persistent definition, as libvirt holds it. */
  inactiveXml(name: string): string;
  state(name: string): string;
  /** Domain id: a new one is given at every start, a reset keeps it. */
  domId(name: string): string;
  /** Defines a small TCG guest on qemu:///system (64 MiB, one e1000 NIC on user networking, no disk). */
  defineTcgDomain(name: string, uuid: string, mac: string): void;
  /** A virsh in front of the real one that lies while `ignorePower` / `alterBoot` are on. */
  virshShim: string;
  ignorePower(on: boolean): void;
  alterBoot(on: boolean): void;
  /** Runs virsh against qemu:///system of this daemon. */
  qemuVirsh(...args: string[]): string;
  /** The command line of the domain's running QEMU process, or undefined. */
  qemuCommandLine(name: string): string | undefined;
  close(): Promise<void>;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Why the daemon peer cannot run here, or undefined when it can. */
export function libvirtDaemonUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'starting libvirtd in a private mount namespace needs root';
  if (!hasCommand('unshare')) return 'util-linux unshare is missing';
  return undefined;
}

/** Why the QEMU driver cannot run here, or undefined when it can. */
export function libvirtQemuUnavailable(): string | undefined {
  const daemon = libvirtDaemonUnavailable();
  if (daemon) return daemon;
  if (!existsSync('/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so') || !hasCommand('qemu-system-x86_64')) {
    return "libvirt's QEMU driver or qemu-system-x86 is not installed";
  }
  return undefined;
}

// QEMU as root without confinement, cgroups or a log daemon: nothing of the host's
// libvirt setup is needed, and define/start take milliseconds instead of seconds.
const PRIVATE_QEMU_CONF = ['user = "root"', 'group = "root"', 'dynamic_ownership = 0', 'remember_owner = 0', 'security_driver = "none"', 'namespaces = []', 'cgroup_controllers = []', 'stdio_handler = "file"', ''].join('\n');

/**
 * The lying front of `virsh` (see the module comment). `define FILE` is always the last
 * argument; the boot rotation is network → cdrom → hd → network.
 */
const VIRSH_SHIM = `#!/bin/sh
dir='@DIR@'
for a in "$@"; do
  case $a in
    start|destroy|reset|shutdown|resume) [ -f "$dir/ignore-power" ] && exit 0 ;;
    define)
      if [ -f "$dir/alter-boot" ]; then
        for file in "$@"; do :; done
        sed -i -e "s/<boot dev=.network./<boot dev='X-cdrom'/g" -e "s/<boot dev=.hd./<boot dev='X-network'/g" -e "s/<boot dev=.cdrom./<boot dev='X-hd'/g" -e "s/dev='X-/dev='/g" "$file"
      fi ;;
  esac
done
exec virsh "$@"
`;

export interface LibvirtDaemonOptions {
  /**
   * The caller needs qemu:///system (TCG guests): refuse at once where libvirt's QEMU driver
   * or QEMU is missing. (Wherever the driver is installed the daemon serves it, always with
   * the private qemu.conf.)
   */
  qemu?: boolean;
  /** Also listen on a loopback TCP port without authentication (`tcpUri`). */
  tcp?: boolean;
}

export async function startLibvirtDaemon(domains: TestDomain[] = TEST_DOMAINS, options: LibvirtDaemonOptions = {}): Promise<LibvirtDaemonPeer> {
  const unavailable = options.qemu ? libvirtQemuUnavailable() : libvirtDaemonUnavailable();
  if (unavailable) throw new Error(unavailable);
  ensureDebianPackages(['libvirt-daemon', 'libvirt-clients'], () => hasCommand('virsh') && existsSync('/usr/sbin/libvirtd'));
  const dir = mkdtempSync(join(tmpdir(), 'plinth-libvirtd-'));
  const sockets = join(dir, 'sock');
  mkdirSync(sockets);
  const conf = join(dir, 'libvirtd.conf');
  const tcpPort = options.tcp ? await freeTcpPort() : undefined;
  const tcpConf = tcpPort ? ['listen_tls = 0', 'listen_tcp = 1', 'listen_addr = "127.0.0.1"', `tcp_port = "${tcpPort}"`, 'auth_tcp = "none"'] : [];
  writeFileSync(
    conf,
    [
      ...tcpConf,
      `unix_sock_dir = "${sockets}"`,
      'unix_sock_rw_perms = "0700"',
      'auth_unix_rw = "none"',
      'auth_unix_ro = "none"',
      `log_outputs = "3:file:${join(dir, 'libvirtd.log')}"`,
      '',
    ].join('\n'),
  );
  // Everything libvirtd writes (state, definitions, default filters) lands in tmpfs
  // mounts private to its namespace: the host's libvirt configuration is neither read nor changed.
  const privateDirs = ['/etc/libvirt', '/run/libvirt', '/var/lib/libvirt', '/var/cache/libvirt'];
  // Always: libvirtd loads its QEMU driver whenever it is installed, even for test:///, and a
  // driver that fails to initialise makes the whole daemon exit; the private qemu.conf keeps
  // that driver away from the host's cgroups, security drivers and log daemon.
  writeFileSync(join(dir, 'qemu.conf'), PRIVATE_QEMU_CONF);
  const qemuConf = ` && cp ${join(dir, 'qemu.conf')} /etc/libvirt/qemu.conf`;
  // The QEMU driver also resolves its built-in user 'libvirt-qemu' before it reads qemu.conf;
  // where libvirt-daemon-system never created it, the namespace sees copies of passwd and
  // group that have it.
  const account = (file: string, line: string) =>
    `{ grep -q '^libvirt-qemu:' /etc/${file} || { cp /etc/${file} ${dir}/${file} && echo '${line}' >> ${dir}/${file} && mount --bind ${dir}/${file} /etc/${file}; }; }`;
  const accounts = `${account('passwd', 'libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin')} && ${account('group', 'libvirt-qemu:x:64055:')}`;
  const script = `${DROP_BLOCK_DEVICE_MOUNTS} && ${privateDirs.map((d) => `mkdir -p ${d} && mount -t tmpfs tmpfs ${d}`).join(' && ')} && ${accounts}${qemuConf} && exec /usr/sbin/libvirtd${tcpPort ? ' --listen' : ''} -f ${conf}`;
  const daemon: ChildProcess = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let daemonErr = '';
  daemon.stderr?.on('data', (d: Buffer) => (daemonErr += d.toString()));
  const daemonExited = new Promise<void>((r) => daemon.once('exit', () => r()));
  const socket = join(sockets, 'libvirt-sock');
  const uri = `test+unix:///default?socket=${socket}`;

  const qemuDomains: string[] = [];
  const qemuUri = `qemu+unix:///system?socket=${socket}`;
  /** PIDs of the QEMU processes of our domains (they outlive libvirtd unless destroyed). */
  const qemuPids = (name: string): number[] => {
    const pids: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
        if (cmdline.includes(`guest=${name},`)) pids.push(Number(entry));
      } catch {
        // the process ended meanwhile
      }
    }
    return pids;
  };
  const cleanup = async (): Promise<void> => {
    for (const name of qemuDomains) {
      try {
        execFileSync('virsh', ['-q', '-c', qemuUri, 'destroy', name], { stdio: 'ignore', timeout: 15_000 });
      } catch {
        // not running
      }
    }
    daemon.kill('SIGTERM');
    const killer = setTimeout(() => daemon.kill('SIGKILL'), 3_000);
    await daemonExited;
    clearTimeout(killer);
    for (const name of qemuDomains) for (const pid of qemuPids(name)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 15_000;
  while (!existsSync(socket)) {
    if (daemon.exitCode !== null || Date.now() > deadline) {
      await cleanup();
      throw new Error(`libvirtd did not start: ${daemonErr.trim() || 'no socket'}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  // The open session that keeps test:///default (and so every change) alive.
  const holder: ChildProcess = spawn('virsh', ['-c', uri], { stdio: ['pipe', 'ignore', 'ignore'] });
  const holderExited = new Promise<void>((r) => holder.once('exit', () => r()));
  const virsh = (...args: string[]): string => execFileSync('virsh', ['-q', '-c', uri, ...args], { encoding: 'utf8', timeout: 15_000 });
  // The holder is connected once it sees what a fresh connection sees.
  for (let i = 0; ; i++) {
    try {
      virsh('list', '--all');
      break;
    } catch (err) {
      if (i > 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await new Promise((r) => setTimeout(r, 200));
  for (const d of domains) {
    const file = join(dir, `${d.name}.xml`);
    writeFileSync(file, testDomainXml(d));
    virsh('define', file);
  }

  const shim = join(dir, 'virsh-shim.sh');
  writeFileSync(shim, VIRSH_SHIM.replace('@DIR@', dir), { mode: 0o755 });
  const flag = (name: string, on: boolean): void => {
    if (on) writeFileSync(join(dir, name), '');
    else rmSync(join(dir, name), { force: true });
  };

  const tcpUri = tcpPort ? `test+tcp://127.0.0.1:${tcpPort}/default` : undefined;
  if (tcpUri) {
    // Listening once the remote protocol answers over TCP.
    for (let i = 0; ; i++) {
      try {
        execFileSync('virsh', ['-q', '-c', tcpUri, 'list', '--all'], { stdio: 'pipe', timeout: 15_000 });
        break;
      } catch (err) {
        if (i > 50) {
          await cleanup();
          throw err;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  return {
    uri,
    tcpUri,
    virshShim: shim,
    ignorePower: (on) => flag('ignore-power', on),
    alterBoot: (on) => flag('alter-boot', on),
    qemuUri: `qemu+unix:///system?socket=${socket}`,
    socket,
    domains,
    virsh,
    inactiveXml: (name) => virsh('dumpxml', '--inactive', name),
    state: (name) => virsh('domstate', name).trim(),
    domId: (name) => virsh('domid', name).trim(),
    qemuVirsh: (...args) => execFileSync('virsh', ['-q', '-c', qemuUri, ...args], { encoding: 'utf8', timeout: 30_000 }),
    defineTcgDomain: (name, uuid, mac) => {
      const file = join(dir, `${name}.xml`);
      writeFileSync(
        file,
        `<domain type='qemu'>
  <name>${name}</name>
  <uuid>${uuid}</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='user'><mac address='${mac}'/><model type='e1000'/></interface>
    <serial type='null'/>
    <memballoon model='none'/>
  </devices>
</domain>
`,
      );
      execFileSync('virsh', ['-q', '-c', qemuUri, 'define', file], { stdio: 'pipe', timeout: 30_000 });
      qemuDomains.push(name);
    },
    qemuCommandLine: (name) => {
      const [pid] = qemuPids(name);
      return pid === undefined ? undefined : readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    },
    close: async () => {
      holder.stdin?.end('quit\n');
      const killer = setTimeout(() => holder.kill('SIGKILL'), 2_000);
      await holderExited;
      clearTimeout(killer);
      await cleanup();
    },
  };
}
