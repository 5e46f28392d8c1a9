import { isIPv6 } from 'node:net';
import { isUselessMac, normalizeMac } from '../core/mac.js';
import { DHCP_TAGS } from './dnsmasq-config.js';

/**
 * Reading dnsmasq's DHCP log (`log-dhcp`, `--log-facility=-`) back into events for the boot
 * trace. dnsmasq logs one block per packet, every line carrying the transaction id:
 *
 *   dnsmasq-dhcp[594]: 145780688 available DHCP range: 10.78.0.100 -- 10.78.0.150
 *   dnsmasq-dhcp[594]: 145780688 vendor class: PXEClient:Arch:00000:UNDI:002001
 *   dnsmasq-dhcp[594]: 145780688 DHCPREQUEST(eth0) 10.78.0.136 52:54:00:aa:bb:03
 *   dnsmasq-dhcp[594]: 145780688 tags: eth0
 *   dnsmasq-dhcp[594]: 145780688 DHCPACK(eth0) 10.78.0.136 52:54:00:aa:bb:03
 *   dnsmasq-dhcp[594]: 145780688 next server: 10.78.0.1
 *   dnsmasq-dhcp[594]: 145780688 sent size: 14 option: 67 bootfile-name  undionly.kpxe
 *
 * The answer's details (boot file, next server) come after the answer's line, so an event is
 * complete when the next packet's block starts or when the reader goes quiet (`flush`).
 *
 * DHCPv6 blocks look the same, but the client is named by its DUID, not its MAC: dnsmasq
 * logs the MAC it found on a line of its own before the answer, and the boot file is option 59:
 *
 *   dnsmasq-dhcp[13073]: 7486110 available DHCP range: fd78::100 -- fd78::1ff
 *   dnsmasq-dhcp[13073]: 7486110 client MAC address: 52:54:00:e2:60:01
 *   dnsmasq-dhcp[13073]: 7486110 DHCPREPLY(eth0) fd78::10c 00:04:00:00:…
 *   dnsmasq-dhcp[13073]: 7486110 tags: ipxe, dhcpv6, eth0
 *   dnsmasq-dhcp[13073]: 7486110 sent size: 31 option: 59 bootfile-url  http://[fd78::1]:7708/boot.ipxe
 *
 * MACs, vendor classes and host names come from whoever is on the network: MACs must parse,
 * text is cut short and stripped of anything unprintable, over-long lines are dropped.
 */
/** ack/nak/no-address: full mode; proxy: the proxy's PXE offer; boot-server: its answer on port 4011 (the boot file). */
export type DhcpEventKind = 'ack' | 'nak' | 'no-address' | 'proxy' | 'boot-server';

/** What the boot trace records: which client, what it asked, what it was told. */
export type DhcpClientKind = 'ipxe' | 'http-boot' | 'uefi-pxe' | 'bios-pxe' | 'other';

export interface DhcpEvent {
  kind: DhcpEventKind;
  mac: string;
  /** The address given (ack), or asked for (nak). */
  address: string | null;
  interface: string;
  client: DhcpClientKind;
  vendorClass: string | null;
  tags: string[];
  bootFile: string | null;
  nextServer: string | null;
  hostname: string | null;
}

export const MAX_LOG_LINE = 2048;
const MAX_TEXT = 128;
const MAX_TAGS = 16;
const MAX_OPEN_TRANSACTIONS = 256;

const LINE = /^dnsmasq-dhcp\[\d+\]: (\d{1,10}) (.*)$/;
const MESSAGE = /^(DHCP[A-Z]+|PXE)\(([A-Za-z0-9_.:@-]{1,15})\) (.*)$/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** Printable ASCII only, at most `max` characters; null when nothing is left. */
export function cleanText(s: string, max = MAX_TEXT): string | null {
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[^\x20-\x7e]/g, '?').trim().slice(0, max);
  return t === '' ? null : t;
}

function clientKind(tags: string[], vendorClass: string | null): DhcpClientKind {
  // The vendor class says the same as the tags (PXEClient:Arch:00007:…): either is enough.
  if (tags.includes(DHCP_TAGS.ipxe)) return 'ipxe';
  if (tags.includes(DHCP_TAGS.httpBoot) || vendorClass?.startsWith('HTTPClient')) return 'http-boot';
  if (tags.includes(DHCP_TAGS.efi) || /^PXEClient:Arch:0000[79]\b/.test(vendorClass ?? '')) return 'uefi-pxe';
  if (vendorClass?.startsWith('PXEClient')) return 'bios-pxe';
  return 'other';
}

interface Transaction {
  vendorClass: string | null;
  /** DHCPv6: the MAC dnsmasq found for the DUID that names the client. */
  clientMac: string | null;
  tags: string[];
  pending: Omit<DhcpEvent, 'client' | 'vendorClass' | 'tags' | 'bootFile' | 'nextServer'> | null;
  bootFile: string | null;
  nextServer: string | null;
}

/**
 * The answer line of a packet block ("DHCPACK(eth0) 10.0.0.5 52:54:… host"), or null. A DHCPv6
 * line names a DUID where DHCPv4 has the MAC: `duidMac` is the MAC logged for it, if any.
 */
export function parseMessage(text: string, duidMac: string | null = null): { message: string; interface: string; mac: string; address: string | null; rest: string } | null {
  const m = MESSAGE.exec(text);
  if (!m) return null;
  const words = m[3]!.trim().split(/\s+/);
  let address: string | null = null;
  if (words[0] && (IPV4.test(words[0]) || (words[0].length <= 39 && isIPv6(words[0])))) address = words.shift()!;
  const named = words.shift() ?? '';
  const mac = normalizeMac(named) ?? (duidMac && /^[0-9a-f]{2}(:[0-9a-f]{2})+$/i.test(named) ? duidMac : null);
  if (!mac || isUselessMac(mac)) return null;
  return { message: m[1]!, interface: m[2]!, mac, address, rest: words.join(' ') };
}

/**
 * Turns dnsmasq's log lines into DHCP events. Feed it every line (`line`), and call `flush`
 * when no line came for a moment; both return the events completed.
 */
export class DnsmasqLogReader {
  private readonly open = new Map<string, Transaction>();

  line(raw: string): DhcpEvent[] {
    if (raw.length > MAX_LOG_LINE) return [];
    const m = LINE.exec(raw.trimEnd());
    if (!m) return [];
    const [, xid, text] = m as unknown as [string, string, string];
    const done: DhcpEvent[] = [];
    // A new packet's block: what earlier blocks were waiting for will not come.
    if (text.startsWith('available DHCP')) done.push(...this.endBlocks());
    let t = this.open.get(xid);
    if (!t) {
      if (this.open.size >= MAX_OPEN_TRANSACTIONS) done.push(...this.endBlocks());
      t = { vendorClass: null, clientMac: null, tags: [], pending: null, bootFile: null, nextServer: null };
      this.open.set(xid, t);
    }
    if (text.startsWith('vendor class: ')) t.vendorClass = cleanText(text.slice(14));
    else if (text.startsWith('client MAC address: ')) t.clientMac = normalizeMac(text.slice(20).trim());
    else if (text.startsWith('tags: ')) {
      t.tags = text
        .slice(6)
        .split(',')
        .map((s) => cleanText(s, 32))
        .filter((s): s is string => s !== null)
        .slice(0, MAX_TAGS);
    } else if (text.startsWith('bootfile name: ')) t.bootFile = cleanText(text.slice(15), 256);
    else if (text.startsWith('next server: ')) t.nextServer = IPV4.test(text.slice(13).trim()) ? text.slice(13).trim() : null;
    else if (/^sent size: +\d+ option: +67 bootfile-name /.test(text)) t.bootFile = cleanText(text.replace(/^.*bootfile-name\s+/, ''), 256);
    else if (/^sent size: +\d+ option: +59 bootfile-url /.test(text)) t.bootFile = cleanText(text.replace(/^.*bootfile-url\s+/, ''), 256);
    else {
      const msg = parseMessage(text, t.clientMac);
      const kind = msg ? eventKind(msg.message, msg.rest, msg.address) : null;
      if (msg && kind) {
        t.pending = {
          kind,
          mac: msg.mac,
          address: msg.address,
          interface: msg.interface,
          hostname: kind === 'ack' && msg.rest ? cleanText(msg.rest.split(' ')[0]!, 63) : null,
        };
        t.bootFile = kind === 'boot-server' ? cleanText(msg.rest, 256) : null;
        t.nextServer = null;
      }
    }
    return done;
  }

  /** Completes every event waiting for more lines. */
  flush(): DhcpEvent[] {
    const done: DhcpEvent[] = [];
    for (const [xid, t] of this.open) {
      // A block with no answer line yet keeps what it read (its vendor class) for that line.
      if (!t.pending) continue;
      done.push({ ...t.pending, client: clientKind(t.tags, t.vendorClass), vendorClass: t.vendorClass, tags: t.tags, bootFile: t.bootFile, nextServer: t.nextServer });
      this.open.delete(xid);
    }
    return done;
  }

  /** A new packet's block: every earlier block is complete, answered or not. */
  private endBlocks(): DhcpEvent[] {
    const done = this.flush();
    this.open.clear();
    return done;
  }
}

function eventKind(message: string, rest: string, address: string | null): DhcpEventKind | null {
  if (message === 'DHCPACK') return 'ack';
  // DHCPv6: the REPLY to a REQUEST (or RENEW, REBIND) is the ACK.
  if (message === 'DHCPREPLY') return address ? 'ack' : null;
  if (message === 'DHCPNAK') return 'nak';
  if (message === 'DHCPDISCOVER' && /no address available/.test(rest)) return 'no-address';
  if (message === 'PXE' && rest === 'proxy') return 'proxy';
  if (message === 'PXE' && rest !== '') return 'boot-server';
  return null;
}
