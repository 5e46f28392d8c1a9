import type { Facts, HwTuple } from '../../src/core/facts.js';

/** A valid facts document with overrides (what an agent reports for a small VM). */
export function makeFacts(o: { uuid?: string | null; serial?: string | null; assetTag?: string | null; manufacturer?: string | null; macs?: string[]; disks?: [string, number][]; memoryBytes?: number } = {}): Facts {
  const macs = o.macs ?? ['52:54:00:00:00:01'];
  const disks = (o.disks ?? [['vda', 4 * 2 ** 30]]).map(([name, sizeBytes]) => ({ name, sizeBytes, model: null, serial: null, wwn: null, rotational: true }));
  const hw: HwTuple[] = [
    ['system', 'product', 'serial', o.serial ?? ''],
    ['system', 'product', 'uuid', o.uuid ?? ''],
    ['memory', 'total', 'size', String(o.memoryBytes ?? 2 ** 30)],
    ...disks.map((d): HwTuple => ['disk', d.name, 'size', String(Math.floor(d.sizeBytes / 1e9))]),
    ...macs.map((m, i): HwTuple => ['network', `eth${i}`, 'serial', m]),
  ];
  return {
    system: { uuid: o.uuid ?? null, serial: o.serial ?? null, assetTag: o.assetTag ?? null, manufacturer: o.manufacturer ?? 'QEMU', productName: 'Standard PC' },
    cpu: { architecture: 'x86_64', model: 'QEMU Virtual CPU', sockets: 1, cores: 1, threads: 1 },
    memory: { totalBytes: o.memoryBytes ?? 2 ** 30, source: 'smbios' },
    disks,
    nics: macs.map((mac, i) => ({ name: `eth${i}`, mac, driver: 'virtio_net', speedMbps: null, link: true, ipv4: i === 0 ? ['10.0.2.15'] : [], ipv6: [] })),
    firmware: { bootMode: 'bios', vendor: 'SeaBIOS', version: '1.16' },
    bmc: null,
    hw,
  };
}
