import { isIPv4, isIPv6 } from 'node:net';

/**
 * An address as the host part of a URL: IPv6 in brackets (`http://[fd00::1]:7708/`), without
 * a zone index (`%eth0` means nothing to the machine the URL is handed to); an IPv4-mapped
 * IPv6 address (`::ffff:10.0.0.1`, what a dual-stack socket reports) as plain IPv4; names and
 * IPv4 addresses unchanged.
 */
export function urlHost(address: string): string {
  const mapped = /^::ffff:(.*)$/i.exec(address);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  const bare = address.replace(/%.*$/, '');
  return isIPv6(bare) ? `[${bare}]` : address;
}
