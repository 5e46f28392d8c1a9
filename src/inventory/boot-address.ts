import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { validation } from '../core/errors.js';

/**
 * A machine's fixed boot address: the IPv4 address Plinth's own DHCP server (dhcp.mode full)
 * gives its MACs, at the firmware and in the installer alike, or, where no DHCP server answers,
 * the static address a virtual-media boot's ISO carries (vmedia.network). It must lie in the
 * provisioning subnet (dhcp.range's, or vmedia.network), and be neither that subnet's network
 * or broadcast address nor the controller's own; uniqueness is the database's
 * (ux_machines_boot_address).
 */
export interface BootNetwork {
  /** The subnet's network address and prefix length (10.78.0.0, 24). */
  network: string;
  prefix: number;
  /** The controller's address on it, never handed out ('' when unknown). */
  server: string;
  /** The router a static configuration names (none: ''). */
  gateway?: string;
  /** DNS servers a static configuration names. */
  dns?: string[];
  /** The setting that defined the subnet, for messages (default: dhcp.range). */
  source?: string;
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

/** The netmask of a prefix length (24 → 255.255.255.0). */
export const prefixNetmask = (prefix: number): string => toAddress(prefix === 0 ? 0 : (2 ** 32 - 2 ** (32 - prefix)));

/** Why a controller has no network to fix boot addresses in (it hands out none, and none is configured). */
export const NO_BOOT_NETWORK =
  "a fixed boot address is handed out by Plinth's DHCP server (dhcp.mode full) or carried by a virtual-media ISO (vmedia.network); this controller has neither";

/**
 * Checks an operator's boot address against the provisioning network (a string: why this
 * controller has none, so no address can be fixed). Throws a validation error naming
 * `bootAddress`.
 */
export function checkBootAddress(address: string, net: BootNetwork | string | null): void {
  if (isIPv6(address)) {
    throw validation('bootAddress', `${address.slice(0, 64)} is an IPv6 address: fixed boot addresses are IPv4 (on an IPv6 network machines take DHCPv6 or SLAAC addresses)`);
  }
  if (!isIPv4(address)) throw validation('bootAddress', `'${address.slice(0, 64)}' is not an IPv4 address`);
  if (!net || typeof net === 'string') throw validation('bootAddress', net || NO_BOOT_NETWORK);
  const subnet = new BlockList();
  subnet.addSubnet(net.network, net.prefix, 'ipv4');
  const cidr = `${net.network}/${net.prefix}`;
  if (!subnet.check(address, 'ipv4')) throw validation('bootAddress', `${address} is not in the provisioning subnet ${cidr} (${net.source ?? 'dhcp.range'})`);
  const size = 2 ** (32 - net.prefix);
  const n = toInt(address) - toInt(net.network);
  if (size > 2 && (n === 0 || n === size - 1)) throw validation('bootAddress', `${address} is the ${n === 0 ? 'network' : 'broadcast'} address of ${cidr}`);
  if (address === net.server) throw validation('bootAddress', `${address} is the controller's own address on ${cidr}`);
}
