import { parseKeyValueLines } from './key-value.js';

/**
 * MemTotal from /proc/meminfo, in bytes. It is the RAM the kernel manages, which is less
 * than what is installed (firmware and kernel reservations are missing from it), so it is
 * only the fallback when SMBIOS lists no memory devices.
 */
export function parseMemTotalBytes(text: string): number | null {
  // NOTE: /proc/meminfo says "kB" but means KiB.
  const m = /^(\d+)\s*kB$/.exec(parseKeyValueLines(text).get('MemTotal') ?? '');
  return m ? Number(m[1]) * 1024 : null;
}
