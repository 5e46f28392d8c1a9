import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * A provisioning network made of Linux network namespaces: namespace `core` holds bridge br0,
 * and every other namespace joins it with a veth pair whose inside end is `eth0`. Addresses
 * get `brd +` (tools that use the broadcast address fail silently without it); IPv6 ones
 * (`fd78::1/64`) are usable at once (no duplicate address detection). Names are
 * unique per run (`plinth-t-XXXXXX-…`); `remove` deletes every namespace, which deletes its
 * interfaces, and is safe to call after a half-built network. Needs root.
 */
export interface TestNetwork {
  /** The full namespace name of a member (`ns('ctl')`). */
  ns(member: string): string;
  /** The command prefix that runs a program in a member's network namespace (inNetns). */
  prefix(member: string): string[];
  /** A command to run inside a member's namespace, as execFile/spawn take it: `spawn(...net.command('ctl', argv))`. */
  command(member: string, argv: string[]): [string, string[]];
  /** Runs a command inside a member's namespace; returns its stdout. */
  exec(member: string, argv: string[]): string;
  /** Adds a tap interface to the bridge (in namespace `core`) for a VM: QEMU must run in `core`. */
  addTap(name: string): void;
  /**
   * Joins this process's own namespace to the bridge with a veth pair holding `address` (with
   * `brd +`): what runs here (a BMC stand-in on loopback, a controller) is then on the network
   * too. The pair goes with namespace `core`. Returns the name of this side's interface.
   */
  joinHost(address: string): string;
  remove(): void;
}

/**
 * The command prefix that runs a program in network namespace `name` and nothing else:
 * nsenter --net, not `ip netns exec`. The latter also gives the program a mount namespace of
 * its own, a private copy of every mount on the machine at that moment, so a file system
 * another test (or an image build) mounted then stays mounted in the copy after that test
 * unmounts it, for as long as the program lives: its e2fsck or resize2fs then fails with
 * "in use". Nothing run here needs `ip netns exec`'s /sys remount.
 */
export const inNetns = (name: string): string[] => ['nsenter', `--net=/run/netns/${name}`, '--'];

const ip = (args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

export function createTestNetwork(members: Record<string, string | null>): TestNetwork {
  const id = `plinth-t-${randomBytes(3).toString('hex')}`;
  const ns = (m: string) => `${id}-${m}`;
  const created: string[] = [];
  const remove = () => {
    for (const n of created.splice(0).reverse()) {
      try {
        ip(['netns', 'del', n]);
      } catch {
        // already gone
      }
    }
  };
  try {
    for (const n of ['core', ...Object.keys(members)]) {
      ip(['netns', 'add', ns(n)]);
      created.push(ns(n));
    }
    ip(['-n', ns('core'), 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', ns('core'), 'link', 'set', 'br0', 'up']);
    let i = 0;
    for (const [m, address] of Object.entries(members)) {
      const outside = `v${i++}`;
      ip(['-n', ns('core'), 'link', 'add', outside, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(m)]);
      ip(['-n', ns('core'), 'link', 'set', outside, 'master', 'br0', 'up']);
      ip(['-n', ns(m), 'link', 'set', 'lo', 'up']);
      ip(['-n', ns(m), 'link', 'set', 'eth0', 'up']);
      // NOTE: IPv6 addresses skip duplicate address detection (`nodad`): a tentative address
      // cannot be bound for a second or two, and nothing else on this bridge can own it.
      if (address?.includes(':')) ip(['-n', ns(m), 'addr', 'add', address, 'dev', 'eth0', 'nodad']);
      else if (address) ip(['-n', ns(m), 'addr', 'add', address, 'brd', '+', 'dev', 'eth0']);
      // A DHCP client broadcasts to 255.255.255.255, which needs a route when there is no default one.
      ip(['-n', ns(m), 'route', 'add', '255.255.255.255/32', 'dev', 'eth0']);
    }
  } catch (e) {
    remove();
    throw e;
  }
  const command = (m: string, argv: string[]): [string, string[]] => {
    const [program, ...args] = [...inNetns(ns(m)), ...argv];
    return [program!, args];
  };
  return {
    ns,
    prefix: (m) => inNetns(ns(m)),
    command,
    exec: (m, argv) => execFileSync(...command(m, argv), { stdio: ['ignore', 'pipe', 'pipe'] }).toString(),
    addTap(name) {
      ip(['-n', ns('core'), 'tuntap', 'add', name, 'mode', 'tap']);
      ip(['-n', ns('core'), 'link', 'set', name, 'master', 'br0', 'up']);
    },
    joinHost(address) {
      const inside = `h-${id.slice(-6)}`;
      ip(['link', 'add', inside, 'type', 'veth', 'peer', 'name', 'vhost', 'netns', ns('core')]);
      ip(['-n', ns('core'), 'link', 'set', 'vhost', 'master', 'br0', 'up']);
      ip(['addr', 'add', address, 'brd', '+', 'dev', inside]);
      ip(['link', 'set', inside, 'up']);
      return inside;
    },
    remove,
  };
}

/** True when this process may create namespaces. */
export const isRoot = () => process.getuid?.() === 0;
