import { nonEmpty, parseCount, parseKeyValueLines } from './key-value.js';

/**
 * Parser for `lscpu` (plain text). Handles the flat layout of util-linux < 2.37, the
 * indented tree of later versions, and `lscpu -x` (CPU lists printed as hex masks).
 */
export interface LscpuInfo {
  architecture: string | null;
  modelName: string | null;
  /** "GenuineIntel", "AuthenticAMD", "APM"... */
  vendorId: string | null;
  /** The "CPU(s)" line. */
  cpus: number | null;
  /** CPUs counted from the on-line list or mask; null when neither is printed. */
  onlineCpus: number | null;
  sockets: number | null;
  coresPerSocket: number | null;
  threadsPerCore: number | null;
}

/** Counts the CPUs in a list such as "0-5,48-53" or "0,1". Null when malformed. */
export function countCpuList(list: string): number | null {
  let count = 0;
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) return null;
    const low = Number(m[1]);
    const high = m[2] === undefined ? low : Number(m[2]);
    if (high < low) return null;
    count += high - low + 1;
  }
  return count;
}

/** Counts the bits set in a hex mask: "0xffff", "ff" (aarch64 and ppc64le print no 0x). */
export function countCpuMask(mask: string): number | null {
  const hex = mask.trim().replace(/^0x/i, '').replace(/,/g, '');
  if (!/^[0-9a-f]+$/i.test(hex)) return null;
  let count = 0;
  for (const digit of hex) {
    let nibble = parseInt(digit, 16);
    while (nibble) {
      count += nibble & 1;
      nibble >>= 1;
    }
  }
  return count;
}

export function parseLscpu(text: string): LscpuInfo {
  const f = parseKeyValueLines(text);
  const list = f.get('On-line CPU(s) list');
  const mask = f.get('On-line CPU(s) mask');
  // NOTE: lscpu prints "-" for counts it cannot read (Socket(s) on many aarch64 machines);
  // parseCount turns that into null.
  const modelName = nonEmpty(f.get('Model name'));
  return {
    architecture: nonEmpty(f.get('Architecture')),
    modelName: modelName === '-' ? null : modelName,
    vendorId: nonEmpty(f.get('Vendor ID')),
    cpus: parseCount(f.get('CPU(s)')),
    onlineCpus: list !== undefined ? countCpuList(list) : mask !== undefined ? countCpuMask(mask) : null,
    sockets: parseCount(f.get('Socket(s)')),
    coresPerSocket: parseCount(f.get('Core(s) per socket')),
    threadsPerCore: parseCount(f.get('Thread(s) per core')),
  };
}
