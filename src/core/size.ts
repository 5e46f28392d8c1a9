/**
 * Sizes as people write them: `8G`, `512M`, `16GiB`, `2T`, or a plain number of bytes. Every
 * unit is binary (G = GiB = 2^30 bytes), as `qemu-img`, `lsblk` and the facts' byte counts are;
 * a decimal reading of `GB` would make "500GB" refuse a disk sold as 500 GB by a few percent
 * either way, so one convention for all is the less surprising one.
 */
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([KMGTP])?(?:i?B)?$/i;

/** Bytes, or null when `text` is not a size. */
export function parseSize(text: string): number | null {
  const m = SIZE_RE.exec(text.trim());
  if (!m) return null;
  const unit = m[2] ? ' KMGTP'.indexOf(m[2].toUpperCase()) : 0;
  const bytes = Math.round(Number(m[1]) * 1024 ** unit);
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** Bytes written back the short way: 8 GiB, 512 MiB, 1.5 TiB. */
export function formatBinarySize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = bytes;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : Number(v.toFixed(1))} ${units[i]}`;
}
