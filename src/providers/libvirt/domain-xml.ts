/**
 * Reading and editing libvirt domain XML (what `virsh dumpxml` prints and `virsh define`
 * takes). The document is kept in fast-xml-parser's order-preserving form so that an edit
 * changes the boot elements and nothing else.
 *
 * libvirt has two exclusive ways to order boot devices: `<os><boot dev='…'/>` elements, or
 * `<boot order='N'/>` inside individual devices; a domain using the second must not get the
 * first (libvirt refuses the definition). The editor keeps whichever style the domain uses.
 */
import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { isUselessMac, normalizeMac } from '../../core/mac.js';
import type { BootDevice, BootMode } from '../types.js';

type XmlNode = Record<string, unknown>;

const XML_OPTIONS = {
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  commentPropName: '#comment',
} as const;

const parser = new XMLParser(XML_OPTIONS);
const builder = new XMLBuilder({ ...XML_OPTIONS, format: true, suppressEmptyNode: true });

/** `<os><boot dev>` values and per-device kinds for each Plinth boot device. */
const OS_BOOT_DEV: Partial<Record<BootDevice, string>> = { pxe: 'network', disk: 'hd', cd: 'cdrom' };
const OS_BOOT_TO_DEVICE: Record<string, BootDevice> = { network: 'pxe', hd: 'disk', cdrom: 'cd' };

type DeviceKind = 'network' | 'disk' | 'cdrom' | 'other';
const DEVICE_FOR_KIND: Record<DeviceKind, BootDevice | undefined> = { network: 'pxe', disk: 'disk', cdrom: 'cd', other: undefined };
const KIND_FOR_DEVICE: Partial<Record<BootDevice, DeviceKind>> = { pxe: 'network', disk: 'disk', cd: 'cdrom' };

function tagOf(node: XmlNode): string | undefined {
  return Object.keys(node).find((k) => k !== ':@');
}

function childrenOf(node: XmlNode): XmlNode[] {
  const tag = tagOf(node);
  const c = tag ? node[tag] : undefined;
  return Array.isArray(c) ? (c as XmlNode[]) : [];
}

function attr(node: XmlNode, name: string): string | undefined {
  const a = node[':@'] as Record<string, unknown> | undefined;
  const v = a?.[`@_${name}`];
  return typeof v === 'string' ? v : undefined;
}

function child(node: XmlNode, tag: string): XmlNode | undefined {
  return childrenOf(node).find((c) => tagOf(c) === tag);
}

function textOf(node: XmlNode | undefined): string | undefined {
  if (!node) return undefined;
  const t = childrenOf(node).find((c) => tagOf(c) === '#text');
  const v = t?.['#text'];
  return typeof v === 'string' ? v : undefined;
}

function deviceKind(device: XmlNode): DeviceKind {
  const tag = tagOf(device);
  if (tag === 'interface') return 'network';
  if (tag === 'disk') return attr(device, 'device') === 'cdrom' ? 'cdrom' : attr(device, 'device') === 'disk' || attr(device, 'device') === undefined ? 'disk' : 'other';
  return 'other';
}

export interface DomainSummary {
  name: string;
  uuid: string;
  macs: string[];
  /** `os` when ordered by `<os><boot dev>`, `device` when by per-device `<boot order>`. */
  bootStyle: 'os' | 'device';
  /** The device booted first, when one of Plinth's kinds. */
  firstBootDevice: BootDevice | undefined;
  /** The firmware the domain boots with. */
  firmware: BootMode;
  /** The boot elements in document order, to compare two definitions. */
  bootSignature: string;
}

/** A parsed domain definition that can be read and have its boot order changed. */
export class DomainXml {
  private readonly doc: XmlNode[];
  private readonly domain: XmlNode;

  constructor(xml: string) {
    this.doc = parser.parse(xml) as XmlNode[];
    const domain = this.doc.find((n) => tagOf(n) === 'domain');
    if (!domain) throw new Error('not a libvirt domain definition (no <domain> element)');
    this.domain = domain;
  }

  private os(): XmlNode | undefined {
    return child(this.domain, 'os');
  }

  private devices(): XmlNode[] {
    const devices = child(this.domain, 'devices');
    return devices ? childrenOf(devices).filter((d) => tagOf(d) !== '#text' && tagOf(d) !== '#comment') : [];
  }

  private orderedDevices(): Array<{ device: XmlNode; order: number }> {
    const out: Array<{ device: XmlNode; order: number }> = [];
    for (const device of this.devices()) {
      const boot = child(device, 'boot');
      const order = boot ? Number(attr(boot, 'order')) : NaN;
      if (Number.isFinite(order)) out.push({ device, order });
    }
    return out.sort((a, b) => a.order - b.order);
  }

  summary(): DomainSummary {
    const macs = new Set<string>();
    for (const device of this.devices()) {
      if (tagOf(device) !== 'interface') continue;
      const raw = attr(child(device, 'mac') ?? {}, 'address');
      const mac = raw ? normalizeMac(raw) : null;
      if (mac && !isUselessMac(mac)) macs.add(mac);
    }
    const ordered = this.orderedDevices();
    const osBoot = childrenOf(this.os() ?? {}).filter((c) => tagOf(c) === 'boot').map((b) => attr(b, 'dev') ?? '');
    const bootStyle = ordered.length > 0 ? 'device' : 'os';
    const firstBootDevice = bootStyle === 'device' ? DEVICE_FOR_KIND[deviceKind(ordered[0]!.device)] : osBoot.length ? OS_BOOT_TO_DEVICE[osBoot[0]!] : 'disk';
    const os = this.os();
    const loader = os ? child(os, 'loader') : undefined;
    const firmware: BootMode = (os && attr(os, 'firmware') === 'efi') || (loader && attr(loader, 'type') === 'pflash') ? 'uefi' : 'legacy';
    const bootSignature =
      bootStyle === 'device'
        ? ordered.map((o) => `${tagOf(o.device)}:${attr(child(o.device, 'mac') ?? {}, 'address') ?? attr(child(o.device, 'target') ?? {}, 'dev') ?? ''}=${o.order}`).join(',')
        : osBoot.join(',');
    return {
      name: textOf(child(this.domain, 'name')) ?? '',
      uuid: (textOf(child(this.domain, 'uuid')) ?? '').toLowerCase(),
      macs: [...macs],
      bootStyle,
      firstBootDevice,
      firmware,
      bootSignature,
    };
  }

  /**
   * Makes `device` the first boot device, keeping the others as fallbacks in their order.
   * Throws when the domain has no device of that kind to put first (per-device style).
   */
  setFirstBootDevice(device: BootDevice): void {
    const ordered = this.orderedDevices();
    if (ordered.length === 0) {
      const dev = OS_BOOT_DEV[device];
      if (!dev) throw new Error(`libvirt has no <os><boot dev> for ${device}`);
      const os = this.os();
      if (!os) throw new Error('the domain has no <os> element');
      const children = childrenOf(os);
      const previous = children.filter((c) => tagOf(c) === 'boot').map((b) => attr(b, 'dev') ?? '').filter((d) => d && d !== dev);
      const kept = children.filter((c) => tagOf(c) !== 'boot');
      const at = kept.findIndex((c) => tagOf(c) === 'type') + 1;
      const boots = [dev, ...(previous.length ? previous : dev === 'hd' ? [] : ['hd'])].map((d) => ({ boot: [], ':@': { '@_dev': d } }));
      kept.splice(at, 0, ...boots);
      os[tagOf(os)!] = kept;
      return;
    }
    const kind = KIND_FOR_DEVICE[device];
    const candidates = this.devices().filter((d) => deviceKind(d) === kind);
    if (!kind || candidates.length === 0) throw new Error(`the domain has no ${kind ?? device} device to boot from`);
    const first = ordered.find((o) => deviceKind(o.device) === kind)?.device ?? candidates[0]!;
    const sequence = [first, ...ordered.map((o) => o.device).filter((d) => d !== first)];
    for (const d of this.devices()) d[tagOf(d)!] = childrenOf(d).filter((c) => tagOf(c) !== 'boot');
    sequence.forEach((d, i) => {
      childrenOf(d).push({ boot: [], ':@': { '@_order': String(i + 1) } });
    });
  }

  toXml(): string {
    return (builder.build(this.doc) as string).trim() + '\n';
  }
}
