import { isIPv4, isIPv6 } from 'node:net';

/**
 * `dhcp.range` read once: an IPv4 `first,last[,netmask]` (DHCPv4), or an IPv6
 * `first,last[,prefix length]` (DHCPv6 with router advertisements). The schema checks the
 * shape; `parseDhcpRange` the addresses themselves. Empty fields are absent.
 */
export type DhcpRange =
  | { family: 4; first: string; last: string; netmask: string | null }
  | { family: 6; first: string; last: string; prefixLength: number };

/** The range, or a sentence saying what is wrong with it (for `dhcp.range`). */
export function parseDhcpRange(range: string): DhcpRange | string {
  const [first = '', last = '', third, ...more] = range.split(',');
  if (more.length > 0 || !first || !last) return 'expected first,last[,netmask] (IPv4) or first,last[,prefix length] (IPv6)';
  if (isIPv4(first) && isIPv4(last)) {
    if (third !== undefined && !isIPv4(third)) return `'${third}' is not an IPv4 netmask`;
    return { family: 4, first, last, netmask: third ?? null };
  }
  if (isIPv6(first) && isIPv6(last)) {
    const prefixLength = third === undefined ? 64 : Number(third);
    // NOTE: SLAAC and dnsmasq's router advertisements need a /64; DHCPv6 alone accepts 64..128.
    if (!Number.isInteger(prefixLength) || prefixLength < 64 || prefixLength > 128) return `prefix length '${third}' must be 64 to 128`;
    return { family: 6, first, last, prefixLength };
  }
  return `'${first}' and '${last}' must both be IPv4 or both IPv6 addresses`;
}

/** The IP family DHCP is served in: 6 for full mode with an IPv6 range, else 4. */
export function dhcpFamily(dhcp: { mode: string; range: string }): 4 | 6 {
  const range = dhcp.mode === 'full' ? parseDhcpRange(dhcp.range) : null;
  return typeof range === 'object' && range?.family === 6 ? 6 : 4;
}
