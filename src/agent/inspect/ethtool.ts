import { nonEmpty, parseKeyValueLines } from './key-value.js';

/** What `ethtool IFACE` says about the link. */
export interface EthtoolLink {
  /** Null when the driver does not know ("Speed: Unknown!": virtio without a speed, link down). */
  speedMbps: number | null;
  /** "full", "half"; null when unknown. */
  duplex: string | null;
  /** "on", "off"; null when not printed. */
  autoNegotiation: string | null;
  /** Null when ethtool printed no "Link detected" line. */
  linkDetected: boolean | null;
}

/** What `ethtool -i IFACE` says about the driver. */
export interface EthtoolDriver {
  driver: string | null;
  driverVersion: string | null;
  firmwareVersion: string | null;
  /** "0000:04:00.0" for PCI cards; other buses print other things or nothing. */
  busInfo: string | null;
}

export function parseEthtool(text: string): EthtoolLink {
  const f = parseKeyValueLines(text);
  const speed = /^(\d+)\s*Mb\/s$/.exec(f.get('Speed') ?? '');
  const duplex = (f.get('Duplex') ?? '').toLowerCase();
  const autoneg = nonEmpty(f.get('Auto-negotiation'));
  const link = f.get('Link detected');
  return {
    speedMbps: speed ? Number(speed[1]) : null,
    // NOTE: ethtool prints "Unknown! (255)" when the driver reports no duplex.
    duplex: duplex === 'full' || duplex === 'half' ? duplex : null,
    autoNegotiation: autoneg,
    linkDetected: link === 'yes' ? true : link === 'no' ? false : null,
  };
}

export function parseEthtoolDriver(text: string): EthtoolDriver {
  const f = parseKeyValueLines(text);
  return {
    driver: nonEmpty(f.get('driver')),
    driverVersion: nonEmpty(f.get('version')),
    firmwareVersion: nonEmpty(f.get('firmware-version')),
    busInfo: nonEmpty(f.get('bus-info')),
  };
}
