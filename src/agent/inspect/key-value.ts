/**
 * Most inspection tools print `Key: value` lines (lscpu, ethtool, ipmitool, /proc/meminfo).
 * They differ only in padding: lscpu pads after the colon, ipmitool before it, ethtool and
 * the newer lscpu indent the key. This reads all of them the same way.
 *
 * The first occurrence of a key wins: tools repeat keys in sub-sections (lscpu prints
 * "Model name" again as "BIOS Model name", ethtool repeats nothing useful later on).
 * Lines without a key before the colon (continuations) are skipped.
 */
export function parseKeyValueLines(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim();
    if (key === '' || fields.has(key)) continue;
    fields.set(key, line.slice(colon + 1).trim());
  }
  return fields;
}

/** A non-negative integer written in decimal, or null for anything else ("-", "Unknown", ""). */
export function parseCount(value: string | undefined): number | null {
  if (value === undefined || !/^\d+$/.test(value.trim())) return null;
  return Number(value.trim());
}

/** The value, or null when the tool printed nothing. */
export function nonEmpty(value: string | undefined | null): string | null {
  if (value === undefined || value === null) return null;
  const v = value.trim();
  return v === '' ? null : v;
}
