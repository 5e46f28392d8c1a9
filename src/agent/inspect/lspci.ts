/**
 * `lspci -D -vmm`: one record per PCI function, blank-line separated, `Key:\tvalue` lines.
 * Only the names are kept, to report network cards' vendor and product as eDeploy did.
 */
export const LSPCI_ARGS: readonly string[] = ['-D', '-vmm'];

export interface PciDevice {
  /** Domain-qualified address, "0000:04:00.0". */
  slot: string;
  className: string | null;
  vendor: string | null;
  device: string | null;
}

export function parseLspci(text: string): PciDevice[] {
  const devices: PciDevice[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of block.split('\n')) {
      const m = /^(\w+):\s*(.*)$/.exec(line);
      if (m && !fields.has(m[1]!)) fields.set(m[1]!, m[2]!.trim());
    }
    const slot = fields.get('Slot');
    if (!slot) continue;
    devices.push({
      slot,
      className: fields.get('Class') ?? null,
      vendor: fields.get('Vendor') ?? null,
      device: fields.get('Device') ?? null,
    });
  }
  return devices;
}
