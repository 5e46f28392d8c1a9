/**
 * What BMC vendors do differently from the Redfish specification, in one table. Everything
 * here was reported against real firmware; the source of each line is named beside it.
 * The vendor is read from the ComputerSystem / Manager `Manufacturer` and `Oem` data (or
 * forced with the endpoint option `quirks`), and the provider asks the table rather than
 * testing vendor names itself, so a quirk is switched in exactly one place.
 *
 * Quirks that every conformant client must survive anyway (a missing AllowableValues list,
 * virtual media under the Manager instead of the System, iLO's trailing-slash URIs, a
 * Location-less session) are handled generically in the provider, each with its own NOTE.
 */
import type { RedfishResource } from './redfish-client.js';

export const REDFISH_VENDORS = ['dell', 'hpe', 'supermicro', 'lenovo', 'generic'] as const;
export type RedfishVendor = (typeof REDFISH_VENDORS)[number];

export interface RedfishQuirks {
  vendor: RedfishVendor;
  /** The service accepts a PATCH of `Boot.BootSourceOverrideMode`. */
  overrideModeWritable: boolean;
  /** `BootSourceOverrideMode` must go in a PATCH of its own, before target and enablement. */
  overrideModeOwnPatch: boolean;
  /** `BootSourceOverrideMode` must be sent with every override, or the BMC resets it. */
  overrideModeAlwaysSent: boolean;
  /** Virtual media slots (by `Id`) that exist but cannot take a URL. */
  unusableMediaSlot: (slotId: string) => boolean;
}

const noSlotExcluded = (): boolean => false;

export const REDFISH_QUIRKS: Record<RedfishVendor, RedfishQuirks> = {
  generic: {
    vendor: 'generic',
    overrideModeWritable: true,
    overrideModeOwnPatch: false,
    overrideModeAlwaysSent: false,
    unusableMediaSlot: noSlotExcluded,
  },
  dell: {
    vendor: 'dell',
    overrideModeWritable: true,
    // NOTE: iDRAC (13th gen) rejects BootSourceOverrideMode in the same PATCH as
    // BootSourceOverrideEnabled with IDRAC.1.6.SYS410 "read-only and depends on other
    // attributes" (ansible-collections/community.general #5091); sent alone first, it is accepted.
    overrideModeOwnPatch: true,
    overrideModeAlwaysSent: false,
    unusableMediaSlot: noSlotExcluded,
  },
  hpe: {
    vendor: 'hpe',
    // NOTE: iLO does not allow writing BootSourceOverrideMode (community.general #3509 and
    // its fix #3581: "some systems do not allow the mode to be modified"); the boot mode is a
    // BIOS setting there, so a different mode is refused as unsupported instead of sent.
    overrideModeWritable: false,
    overrideModeOwnPatch: false,
    overrideModeAlwaysSent: false,
    unusableMediaSlot: noSlotExcluded,
  },
  supermicro: {
    vendor: 'supermicro',
    overrideModeWritable: true,
    overrideModeOwnPatch: false,
    // NOTE: Supermicro reverts BootSourceOverrideMode to its default unless the PATCH repeats
    // it (DMTF/Redfishtool #106, "as per their design"; ironcore-dev/metal-operator #607).
    overrideModeAlwaysSent: true,
    unusableMediaSlot: noSlotExcluded,
  },
  lenovo: {
    vendor: 'lenovo',
    overrideModeWritable: true,
    overrideModeOwnPatch: false,
    overrideModeAlwaysSent: false,
    // NOTE: XCC lists predefined slots RDOC1/RDOC2 (files uploaded through the web UI) before
    // the EXT* slots that mount a URL; inserting a URL into RDOC fails
    // (lenovo/python-redfish-lenovo #21, the sushy/Ironic loop discussed there).
    unusableMediaSlot: (slotId) => /^RDOC/i.test(slotId),
  },
};

const MANUFACTURER_PATTERNS: Array<[RegExp, RedfishVendor]> = [
  [/\bdell\b/i, 'dell'],
  [/^(hpe?|hewlett)/i, 'hpe'],
  [/supermicro/i, 'supermicro'],
  [/lenovo/i, 'lenovo'],
];

const OEM_KEYS: Array<[string, RedfishVendor]> = [
  ['Dell', 'dell'],
  ['Hpe', 'hpe'],
  ['Hp', 'hpe'],
  ['Supermicro', 'supermicro'],
  ['Lenovo', 'lenovo'],
];

/**
 * The vendor behind a set of resources (ComputerSystem, Manager, service root), from their
 * `Manufacturer` first and their `Oem` section names second. Unknown → `generic`.
 */
export function detectRedfishVendor(resources: Array<RedfishResource | undefined>): RedfishVendor {
  for (const r of resources) {
    const manufacturer = r?.['Manufacturer'] ?? r?.['Vendor'];
    if (typeof manufacturer !== 'string') continue;
    for (const [pattern, vendor] of MANUFACTURER_PATTERNS) if (pattern.test(manufacturer)) return vendor;
  }
  for (const r of resources) {
    const oem = r?.['Oem'];
    if (!oem || typeof oem !== 'object') continue;
    for (const [key, vendor] of OEM_KEYS) if (key in oem) return vendor;
  }
  return 'generic';
}

/** The quirks of a vendor, or of the one named by the endpoint option `quirks`. */
export function redfishQuirks(vendor: RedfishVendor): RedfishQuirks {
  return REDFISH_QUIRKS[vendor];
}

export function isRedfishVendor(value: unknown): value is RedfishVendor {
  return typeof value === 'string' && (REDFISH_VENDORS as readonly string[]).includes(value);
}
