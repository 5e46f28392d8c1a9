/**
 * MAC addresses are stored and compared in one canonical form: six lower-case hex pairs
 * separated by colons. Input may use colons, hyphens, dots (Cisco's aabb.ccdd.eeff) or no
 * separator at all; anything else is not a MAC.
 */
const HEX12 = /^[0-9a-f]{12}$/;

export function normalizeMac(input: string): string | null {
  const s = input.trim().toLowerCase();
  let hex: string;
  if (/^([0-9a-f]{1,2}[:-]){5}[0-9a-f]{1,2}$/.test(s)) {
    hex = s.split(/[:-]/).map((p) => p.padStart(2, '0')).join('');
  } else if (/^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/.test(s)) {
    hex = s.replaceAll('.', '');
  } else {
    hex = s;
  }
  if (!HEX12.test(hex)) return null;
  return hex.match(/../g)!.join(':');
}

/** True for addresses that identify nothing: all zeros, broadcast, multicast. */
export function isUselessMac(mac: string): boolean {
  if (mac === '00:00:00:00:00:00' || mac === 'ff:ff:ff:ff:ff:ff') return true;
  const first = parseInt(mac.slice(0, 2), 16);
  return (first & 1) === 1;
}
