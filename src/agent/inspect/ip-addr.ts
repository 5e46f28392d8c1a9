import { isUselessMac, normalizeMac } from '../../core/mac.js';

/**
 * Network interfaces from `ip -j -d addr show` (iproute2's JSON). `-d` adds `linkinfo`,
 * which is how virtual interfaces (bridges, bonds, VLANs, ifb, veth, dummy...) are told
 * apart from network cards; without it every Ethernet interface is taken for a card.
 */
export const IP_ADDR_ARGS: readonly string[] = ['-j', '-d', 'addr', 'show'];

export interface InterfaceAddress {
  address: string;
  prefixLength: number;
}

export interface NetInterface {
  name: string;
  /** Canonical MAC (core/mac.ts). */
  mac: string;
  /** iproute2's operstate: "UP", "DOWN", "UNKNOWN"... */
  operState: string | null;
  /** The kernel reports carrier (LOWER_UP). */
  lowerUp: boolean;
  ipv4: InterfaceAddress[];
  /** Global and site-scoped IPv6 addresses; link-local ones are left out (see docs/facts.md). */
  ipv6: InterfaceAddress[];
}

interface RawAddrInfo {
  family?: string;
  local?: string;
  prefixlen?: number;
  scope?: string;
}

interface RawLink {
  ifname?: string;
  link_type?: string;
  address?: string;
  permaddr?: string;
  operstate?: string;
  flags?: string[];
  linkinfo?: { info_kind?: string };
  addr_info?: RawAddrInfo[];
}

function addresses(info: RawAddrInfo[] | undefined, family: 'inet' | 'inet6'): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  for (const a of info ?? []) {
    if (a.family !== family || typeof a.local !== 'string') continue;
    // NOTE: link-local IPv6 (fe80::/10) is derived from the MAC and unreachable without a zone; it tells nothing new.
    if (a.scope === 'link' || a.scope === 'host') continue;
    out.push({ address: a.local, prefixLength: typeof a.prefixlen === 'number' ? a.prefixlen : 0 });
  }
  return out;
}

/** The machine's Ethernet cards, in the order the kernel lists them. Throws on output that is not JSON. */
export function parseIpAddr(json: string): NetInterface[] {
  const links = JSON.parse(json) as RawLink[];
  if (!Array.isArray(links)) throw new Error('ip -j addr output is not a JSON array');
  const out: NetInterface[] = [];
  for (const link of links) {
    if (typeof link.ifname !== 'string' || link.link_type !== 'ether') continue;
    if (link.linkinfo?.info_kind) continue;
    // NOTE: a bond slave shows the bond's MAC in `address`; `permaddr` is the card's own.
    const mac = normalizeMac(link.permaddr ?? link.address ?? '');
    if (mac === null || isUselessMac(mac)) continue;
    out.push({
      name: link.ifname,
      mac,
      operState: link.operstate ?? null,
      lowerUp: (link.flags ?? []).includes('LOWER_UP'),
      ipv4: addresses(link.addr_info, 'inet'),
      ipv6: addresses(link.addr_info, 'inet6'),
    });
  }
  return out;
}
