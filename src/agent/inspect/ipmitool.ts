import { normalizeMac } from '../../core/mac.js';

/** `ipmitool lan print [channel]`: the BMC's LAN settings. */
export interface IpmiLan {
  /** "IP Address"; "0.0.0.0" is kept as printed. */
  ipAddress: string | null;
  /** "MAC Address", canonical (core/mac.ts). */
  macAddress: string | null;
  ipAddressSource: string | null;
  subnetMask: string | null;
  defaultGateway: string | null;
  /**
   * Every `Key : value` line in order, the key lower-cased with spaces turned into hyphens
   * ("IP Address" -> "ip-address"): the names eDeploy's hardware-detect gives them.
   */
  entries: Array<[string, string]>;
}

/**
 * Keys start at the left margin; ipmitool continues multi-line values ("Auth Type Enable",
 * "Cipher Suite Priv Max") on lines that start with spaces and a colon, which belong to
 * the previous key and are skipped.
 */
export function parseIpmiLanPrint(text: string): IpmiLan {
  const entries: Array<[string, string]> = [];
  const byKey = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(\S[^:]*?)\s*:\s?(.*)$/.exec(line.replace(/\r$/, ''));
    if (!m) continue;
    const key = m[1]!.trim().toLowerCase().split(/\s+/).join('-');
    const value = m[2]!.trim();
    if (value === '') continue;
    entries.push([key, value]);
    if (!byKey.has(key)) byKey.set(key, value);
  }
  const mac = byKey.get('mac-address');
  return {
    ipAddress: byKey.get('ip-address') ?? null,
    macAddress: mac === undefined ? null : normalizeMac(mac),
    ipAddressSource: byKey.get('ip-address-source') ?? null,
    subnetMask: byKey.get('subnet-mask') ?? null,
    defaultGateway: byKey.get('default-gateway-ip') ?? null,
    entries,
  };
}

/**
 * `ipmitool channel info N`: whether channel N has access settings, which ipmitool prints
 * under "Volatile(active) Settings" / "Non-Volatile Settings". eDeploy's hardware-detect
 * reports the first such channel (probing 0 to 15) as ('system', 'ipmi', 'channel'); in
 * practice it is the BMC's LAN channel.
 */
export function channelHasAccessSettings(text: string): boolean {
  return /Volatile/.test(text);
}
