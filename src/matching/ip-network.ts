/**
 * IP addresses and networks for the `network()` spec function, with Python's `ipaddress`
 * rules (leading zeros in IPv4 rejected, netmask and hostmask forms accepted, host bits set
 * refused) and IPv6, which eDeploy's IPv4-only version lacked.
 */

export interface IpAddress {
  family: 4 | 6;
  value: bigint;
}

export interface IpNetwork {
  family: 4 | 6;
  address: bigint;
  prefix: number;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const BITS = { 4: 32, 6: 128 } as const;

export function parseIPv4(text: string): bigint | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!/^[0-9]{1,3}$/.test(part)) return null;
    if (part.length > 1 && part.startsWith('0')) return null;
    const n = Number(part);
    if (n > 255) return null;
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

export function parseIPv6(input: string): bigint | null {
  // A zone (fe80::1%eth0) names an interface and takes no part in network membership.
  const zone = input.indexOf('%');
  const text = zone >= 0 ? input.slice(0, zone) : input;
  if (zone >= 0 && zone === input.length - 1) return null;
  if (text.length === 0) return null;
  let groups: string[];
  let v4tail: bigint | null = null;
  let body = text;
  const lastColon = body.lastIndexOf(':');
  if (lastColon >= 0 && body.slice(lastColon + 1).includes('.')) {
    v4tail = parseIPv4(body.slice(lastColon + 1));
    if (v4tail === null) return null;
    body = `${body.slice(0, lastColon + 1)}0:0`;
  }
  const halves = body.split('::');
  if (halves.length > 2) return null;
  const split = (s: string): string[] => (s === '' ? [] : s.split(':'));
  if (halves.length === 2) {
    const head = split(halves[0]!);
    const tail = split(halves[1]!);
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return null;
    groups = [...head, ...Array<string>(missing).fill('0'), ...tail];
  } else {
    groups = split(body);
  }
  if (groups.length !== 8) return null;
  let value = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    value = (value << 16n) | BigInt(parseInt(g, 16));
  }
  if (v4tail !== null) value = (value & ~0xffffffffn) | v4tail;
  return value;
}

export function parseAddress(text: string): Parsed<IpAddress> {
  const v4 = parseIPv4(text);
  if (v4 !== null) return { ok: true, value: { family: 4, value: v4 } };
  const v6 = text.includes(':') ? parseIPv6(text) : null;
  if (v6 !== null) return { ok: true, value: { family: 6, value: v6 } };
  return { ok: false, error: `'${text}' is not an IP address` };
}

function maskOf(family: 4 | 6, prefix: number): bigint {
  const bits = BigInt(BITS[family]);
  const all = (1n << bits) - 1n;
  return (all << (bits - BigInt(prefix))) & all;
}

/** The prefix length of a dotted netmask (255.255.255.0) or hostmask (0.0.0.255), if contiguous. */
function prefixFromMask(mask: bigint): number | null {
  for (let prefix = 0; prefix <= 32; prefix++) {
    const m = maskOf(4, prefix);
    if (mask === m || mask === (~m & 0xffffffffn)) return prefix;
  }
  return null;
}

/** Parses `addr[/prefix]` strictly: an address with host bits set is not a network. */
export function parseNetwork(text: string): Parsed<IpNetwork> {
  const slash = text.split('/');
  if (slash.length > 2) return { ok: false, error: `'${text}' is not a network` };
  const [addrText, prefixText] = slash as [string, string | undefined];
  const addr = parseAddress(addrText);
  if (!addr.ok) return { ok: false, error: `'${text}' is not a network: ${addr.error}` };
  const { family, value } = addr.value;
  let prefix: number = BITS[family];
  if (prefixText !== undefined) {
    if (/^[0-9]+$/.test(prefixText)) {
      prefix = Number(prefixText);
      if (prefix > BITS[family]) return { ok: false, error: `'${text}' has an invalid prefix length` };
    } else {
      const mask = family === 4 ? parseIPv4(prefixText) : null;
      const fromMask = mask === null ? null : prefixFromMask(mask);
      if (fromMask === null) return { ok: false, error: `'${text}' has an invalid netmask` };
      prefix = fromMask;
    }
  }
  const mask = maskOf(family, prefix);
  if ((value & mask) !== value) return { ok: false, error: `'${text}' has host bits set` };
  return { ok: true, value: { family, address: value, prefix } };
}

export function networkContains(net: IpNetwork, addr: IpAddress): boolean {
  if (net.family !== addr.family) return false;
  return (addr.value & maskOf(net.family, net.prefix)) === net.address;
}
