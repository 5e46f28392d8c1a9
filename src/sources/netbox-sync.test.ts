import { describe, expect, it } from 'vitest';
import { deviceEntry, machineNameOf } from './netbox-sync.js';

describe('NetBox devices as import entries', () => {
  it('makes hostname labels of device names, or nothing', () => {
    expect(machineNameOf('R1-SRV02.dc1.example.net')).toBe('r1-srv02');
    expect(machineNameOf('Rack 4 / Slot 7')).toBe('rack-4-slot-7');
    expect(machineNameOf('--x--')).toBe('x');
    expect(machineNameOf('.hidden')).toBeNull();
    expect(machineNameOf('')).toBeNull();
    expect(machineNameOf(null)).toBeNull();
    expect(machineNameOf('a'.repeat(80))).toBe('a'.repeat(63));
  });

  it('keeps identity, site, role, address and scalar custom fields; drops placeholders and its own fields', () => {
    const e = deviceEntry(
      {
        id: 7,
        name: 'db-7',
        serial: 'Not Specified',
        asset_tag: 'AT-7',
        site: { slug: 'dc1' },
        role: { slug: 'db' },
        primary_ip: { address: '2001:db8::7/64' },
        custom_fields: { rack_unit: 4, spare: true, contract: { id: 1 }, plinth_state: 'deployed', empty: null, 'bad key!': 'x' },
      },
      ['52:54:00:00:00:07', 'not-a-mac'],
    );
    expect(e).toEqual({
      path: 'device 7 (db-7)',
      name: 'db-7',
      identity: { systemUuid: null, serial: null, manufacturer: null, productName: null, assetTag: 'AT-7', macs: ['52:54:00:00:00:07'] },
      tags: { 'netbox.id': '7', 'netbox.site': 'dc1', 'netbox.role': 'db', 'netbox.primary_ip': '2001:db8::7', rack_unit: '4', spare: 'true' },
      bmc: null,
      appliance: null,
    });
  });
});
