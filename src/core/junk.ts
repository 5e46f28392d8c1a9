/** Identity strings firmware ships that identify nothing (shared by identity resolution and providers). */
/** Values SMBIOS tables are full of that identify nothing (compared case-insensitively, trimmed). */
export const JUNK_VALUES: readonly string[] = [
  '',
  'to be filled by o.e.m.',
  'to be filled by oem',
  'system serial number',
  'system product name',
  'system manufacturer',
  'system version',
  'chassis serial number',
  'chassis manufacture',
  'base board serial number',
  'default string',
  'default',
  '0123456789',
  '123456789',
  '1234567890',
  'none',
  'null',
  'n/a',
  'na',
  'not specified',
  'not settable',
  'not present',
  'not available',
  'not applicable',
  'unknown',
  'invalid',
  'empty',
  'o.e.m.',
  'oem',
  'asset tag',
  'asset-1234567890',
  'no asset tag',
  'no asset information',
  'xxxxxxxxxx',
  'x.x',
];

/** UUIDs that boards ship unset or with a fixed filler. */
export const JUNK_UUIDS: readonly string[] = [
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '03000200-0400-0500-0006-000700080009',
  '00020003-0004-0005-0006-000700080009',
  '01234567-8901-2345-6789-012345678901',
  '12345678-1234-5678-90ab-cddeefaabbcc',
];

const JUNK = new Set(JUNK_VALUES);

/** True when a reported identity string carries no information. */
export function isJunk(value: string | null | undefined): boolean {
  if (value === null || value === undefined) return true;
  const v = value.trim().toLowerCase();
  if (JUNK.has(v)) return true;
  // Strings of one repeated filler character: "00000000", "        ", "........", "FFFFFFFF".
  if (/^(.)\1*$/.test(v) && /^[0 .xf*-]$/.test(v[0]!)) return true;
  return false;
}

