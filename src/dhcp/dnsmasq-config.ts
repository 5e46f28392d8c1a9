import { PlinthError } from '../core/errors.js';
import { parseDhcpRange } from '../config/dhcp-range.js';

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
 *
 * An IPv6 range (full mode) makes dnsmasq a DHCPv6 server that also sends router
 * advertisements: the prefix is advertised on-link and for SLAAC, and with the "managed" flag,
 * so a machine gets a DHCPv6 address, a SLAAC address, or both. iPXE (user class `iPXE`) and
 * UEFI HTTP Boot (vendor class `HTTPClient`) are told what to boot over IPv6 (DHCPv6 option 59,
 * `bootfile-url`): the script, and ipxe.efi over HTTP; legacy PXE ROMs have no IPv6, and Plinth
 * serves no TFTP over IPv6 for UEFI PXEv6.
 */
export interface DnsmasqPlan {
  mode: 'proxy' | 'full';
  interface: string;
  /** Plinth's address on `interface` (IPv4: the TFTP server PXE ROMs are sent to; IPv6 with an IPv6 range). */
  serverAddress: string;
  /** Plain-HTTP base URL of the boot endpoints (iPXE here cannot do HTTPS). */
  bootUrl: string;
  /** full: first,last[,netmask] or an IPv6 first,last[,prefix length]; proxy: the network (default `serverAddress`). */
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
  const range = p.mode === 'full' ? parseDhcpRange(p.range) : null;
  if (typeof range === 'string') throw new PlinthError('validation', `invalid configuration dhcp.range: ${range}`, { details: { field: 'dhcp.range' } });
  if (range?.family === 6) {
    lines.push(
      `dhcp-range=${range.first},${range.last},slaac,${range.prefixLength},${p.leaseSeconds}s`,
      'enable-ra',
      // NOTE: dnsmasq advertises itself as the default router unless told the lifetime is 0;
      // like option 3 in IPv4, Plinth is no router. The prefix stays on-link.
      `ra-param=${p.interface},60,0`,
      p.dns ? `dhcp-option=option6:dns-server,${p.dns.split(',').map((a) => `[${a}]`).join(',')}` : 'dhcp-option=option6:dns-server',
      // NOTE: iPXE says who it is in the DHCPv6 user class (option 15), not in option 175.
      `dhcp-userclass=set:${ipxe},iPXE`,
      `dhcp-option=tag:${ipxe},option6:bootfile-url,${script}`,
      // UEFI HTTP Boot over IPv6 says HTTPClient in its vendor class (option 16), which in
      // DHCPv6 dnsmasq matches only under its enterprise number (343): it gets ipxe.efi's URL.
      // NOTE: dnsmasq 2.90 sends a forced option6:16 as text, never as bytes, so the answer
      // cannot echo the vendor class (enterprise 343, "HTTPClient") as the UEFI spec asks.
      `dhcp-vendorclass=set:${httpBoot},enterprise:343,HTTPClient`,
      `dhcp-option=tag:${httpBoot},tag:!${ipxe},option6:bootfile-url,${efiUrl}`,
    );
  } else if (range) {
    const { first, last, netmask } = range;
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
