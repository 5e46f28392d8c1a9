import type { FirmwareFacts } from '../../core/facts.js';
import type { FactsFs } from './facts-fs.js';

/**
 * How the machine booted the installer. The kernel creates /sys/firmware/efi only when it
 * was started by UEFI firmware; a CSM/legacy boot on UEFI-capable hardware has none, and
 * that is the mode that matters for what gets installed.
 */
export async function detectBootMode(fs: FactsFs): Promise<FirmwareFacts['bootMode']> {
  return (await fs.exists('/sys/firmware/efi').catch(() => false)) ? 'uefi' : 'bios';
}
