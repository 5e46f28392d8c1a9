import { PlinthError } from '../core/errors.js';

/**
 * dnsmasq's configuration for a DHCP mode, as a pure function of what the controller knows
 * (tested against golden files). dnsmasq does DHCP only: no DNS (`port=0`) and no TFTP — the
 * iPXE binaries come from Plinth's own TFTP server (`tftp.enabled`) at `serverAddress`, and
 * over HTTP from the boot routes. Which client gets what, by what it says about itself:
 *
 * - iPXE (it sends option 175)                → the /boot.ipxe URL
 * - UEFI HTTP Boot (vendor class HTTPClient)  → the URL of ipxe.efi over HTTP, option 60
 *                                               echoed as HTTPClient (the firmware wants it)
 * - UEFI PXE ROM (client arch 7 or 9)         → ipxe.efi over TFTP
 * - legacy BIOS PXE ROM (anything else)       → undionly.kpxe over TFTP
 *
 * The tag names (ipxe, httpboot, efi64) are what dnsmasq's log shows and what
 * `dnsmasq-log.ts` reads back.
 */
export interface DnsmasqPlan {
  mode: 'proxy' | 'full';
  interface: string;
  /** Plinth's IPv4 address on `interface`: the TFTP server PXE ROMs are sent to. */
  serverAddress: string;
  /** Plain-HTTP base URL of the boot endpoints (iPXE here cannot do HTTPS). */
  bootUrl: string;
  /** full: first,last[,netmask]; proxy: the network (default `serverAddress`). */
  range: string;
  gateway: string;
  dns: string;
  leaseSeconds: number;
  hostsDir: string;
  leaseFile: string;
}

export const DHCP_TAGS = { ipxe: 'ipxe', httpBoot: 'httpboot', efi: 'efi64' } as const;

/** A boot URL goes verbatim into a dnsmasq line: nothing that could end or split it. */
const URL_SAFE = /^http:\/\/[A-Za-z0-9.\-[\]:]+(\/[A-Za-z0-9._~%/-]*)?$/;

export function dnsmasqConfig(p: DnsmasqPlan): string {
  const base = p.bootUrl.replace(/\/+$/, '');
  if (!URL_SAFE.test(base)) {
    throw new PlinthError('validation', `the boot URL handed out over DHCP must be a plain http:// URL without spaces or commas, got '${base.slice(0, 100)}' (publicUrl, tls.bootPublicUrl)`, {
      details: { field: 'publicUrl' },
    });
  }
  const { ipxe, httpBoot, efi } = DHCP_TAGS;
  const script = `${base}/boot.ipxe`;
  const efiUrl = `${base}/boot/ipxe.efi`;
  const lines = [
    `# Written by Plinth (dhcp.mode=${p.mode}); rewritten at every start: do not edit.`,
    'port=0',
    `interface=${p.interface}`,
    'bind-interfaces',
    `dhcp-leasefile=${p.leaseFile}`,
    `dhcp-hostsdir=${p.hostsDir}`,
    'log-dhcp',
    `dhcp-match=set:${ipxe},175`,
    `dhcp-vendorclass=set:${httpBoot},HTTPClient`,
    `dhcp-match=set:${efi},option:client-arch,7`,
    `dhcp-match=set:${efi},option:client-arch,9`,
  ];
  if (p.mode === 'full') {
    const [first, last, netmask] = p.range.split(',');
    lines.push(
      `dhcp-range=${first},${last},${netmask ? `${netmask},` : ''}${p.leaseSeconds}s`,
      // NOTE: without an explicit option 3 dnsmasq offers itself as the router.
      p.gateway ? `dhcp-option=3,${p.gateway}` : 'dhcp-option=3',
      p.dns ? `dhcp-option=6,${p.dns}` : 'dhcp-option=6',
      `dhcp-boot=tag:!${ipxe},tag:!${httpBoot},tag:!${efi},undionly.kpxe,,${p.serverAddress}`,
      `dhcp-boot=tag:!${ipxe},tag:!${httpBoot},tag:${efi},ipxe.efi,,${p.serverAddress}`,
      `dhcp-boot=tag:${ipxe},${script}`,
      `dhcp-boot=tag:${httpBoot},tag:!${ipxe},${efiUrl}`,
      `dhcp-option-force=tag:${httpBoot},60,HTTPClient`,
    );
  } else {
    lines.push(
      `dhcp-range=${p.range.split(',')[0] || p.serverAddress},proxy`,
      // NOTE: in proxy mode PXE ROMs and iPXE read their boot file from a PXE menu
      // (pxe-service); with dhcp-boot alone iPXE says "Nothing to boot". UEFI PXE ROMs send
      // client arch 7 (BC_EFI) or 9 (x86-64_EFI).
      'pxe-prompt="Plinth",0',
      `pxe-service=tag:!${ipxe},x86PC,"BIOS PXE",undionly.kpxe,${p.serverAddress}`,
      `pxe-service=tag:!${ipxe},BC_EFI,"UEFI PXE",ipxe.efi,${p.serverAddress}`,
      `pxe-service=tag:!${ipxe},x86-64_EFI,"UEFI PXE",ipxe.efi,${p.serverAddress}`,
      `pxe-service=tag:${ipxe},x86PC,"iPXE",${script}`,
      `pxe-service=tag:${ipxe},BC_EFI,"iPXE",${script}`,
      `pxe-service=tag:${ipxe},x86-64_EFI,"iPXE",${script}`,
      // NOTE: a pxe-service entry gives UEFI HTTP Boot no URL; answering HTTPClient as a PXE
      // vendor with a plain boot file does.
      'dhcp-pxe-vendor=PXEClient,HTTPClient',
      `dhcp-boot=tag:${httpBoot},${efiUrl}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The command line of the supervised dnsmasq: in the foreground, its log on stderr. */
export function dnsmasqArgs(confFile: string): string[] {
  return ['--keep-in-foreground', `--conf-file=${confFile}`, '--log-facility=-', '--pid-file='];
}
