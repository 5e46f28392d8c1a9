/**
 * How the lifecycle boots a machine into the installer: `pxe` (network boot, the default),
 * `http` (UEFI HTTP boot of the iPXE binary Plinth serves) or `vmedia` (the installer ISO
 * attached through the BMC as a virtual CD; no DHCP boot options needed). Set per appliance
 * (the default of its machines) and per machine (an override).
 */
export const BOOT_METHODS = ['pxe', 'http', 'vmedia'] as const;
export type BootMethod = (typeof BOOT_METHODS)[number];
export const DEFAULT_BOOT_METHOD: BootMethod = 'pxe';

/** A machine's own boot method, else its appliance's, else pxe. */
export function effectiveBootMethod(machine: string | null | undefined, appliance: string | null | undefined): BootMethod {
  const pick = (v: string | null | undefined) => (BOOT_METHODS as readonly string[]).includes(v ?? '') ? (v as BootMethod) : null;
  return pick(machine) ?? pick(appliance) ?? DEFAULT_BOOT_METHOD;
}
