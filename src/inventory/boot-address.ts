import { BlockList, isIPv4 } from 'node:net';
import { validation } from '../core/errors.js';

/**
 * A machine's fixed boot address: the IPv4 address Plinth's own DHCP server (dhcp.mode full)
 * gives its MACs, at the firmware and in the installer alike. It must lie in the provisioning
 * subnet (the one of dhcp.range), and be neither that subnet's network or broadcast address
 * nor the controller's own; uniqueness is the database's (ux_machines_boot_address).
 */
export interface BootNetwork {
  /** The subnet's network address and prefix length (10.78.0.0, 24). */
  network: string;
  prefix: number;
  /** The controller's address on it, never handed out. */
  server: string;
}

const toInt = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const toAddress = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/** The prefix length of a netmask (255.255.255.0 → 24); null when it is not a contiguous mask. */
export function netmaskPrefix(netmask: string): number | null {
  if (!isIPv4(netmask)) return null;
  const bits = toInt(netmask).toString(2).padStart(32, '0');
  const ones = /^(1*)0*$/.exec(bits);
  return ones ? ones[1]!.length : null;
}

/** The subnet an address is in, with that netmask. */
export function bootNetwork(address: string, netmask: string, server: string): BootNetwork | null {
  const prefix = netmaskPrefix(netmask);
  if (prefix === null || !isIPv4(address)) return null;
  const size = 2 ** (32 - prefix);
  return { network: toAddress(Math.floor(toInt(address) / size) * size), prefix, server };
}

/**
 * Checks an operator's boot address against the provisioning network (`null`: this
 * controller serves no addresses, so none can be fixed). Throws a validation error naming
 * `bootAddress`.
 */
export function checkBootAddress(address: string, net: BootNetwork | null): void {
  if (!isIPv4(address)) throw validation('bootAddress', `'${address.slice(0, 64)}' is not an IPv4 address`);
  if (!net) {
    throw validation('bootAddress', "a fixed boot address is handed out by Plinth's DHCP server, which this controller runs only with dhcp.mode full");
  }
  const subnet = new BlockList();
  subnet.addSubnet(net.network, net.prefix, 'ipv4');
  const cidr = `${net.network}/${net.prefix}`;
  if (!subnet.check(address, 'ipv4')) throw validation('bootAddress', `${address} is not in the provisioning subnet ${cidr} (dhcp.range)`);
  const size = 2 ** (32 - net.prefix);
  const n = toInt(address) - toInt(net.network);
  if (size > 2 && (n === 0 || n === size - 1)) throw validation('bootAddress', `${address} is the ${n === 0 ? 'network' : 'broadcast'} address of ${cidr}`);
  if (address === net.server) throw validation('bootAddress', `${address} is the controller's own address on ${cidr}`);
}
