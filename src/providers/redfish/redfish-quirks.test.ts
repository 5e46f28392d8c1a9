import { describe, expect, it } from 'vitest';
import { detectRedfishVendor, REDFISH_QUIRKS } from './redfish-quirks.js';

describe('Redfish vendor detection', () => {
  it('reads Manufacturer first', () => {
    expect(detectRedfishVendor([{ Manufacturer: 'Dell Inc.' }])).toBe('dell');
    expect(detectRedfishVendor([{ Manufacturer: 'HPE' }])).toBe('hpe');
    expect(detectRedfishVendor([{ Manufacturer: 'HP' }])).toBe('hpe');
    expect(detectRedfishVendor([{ Manufacturer: 'Supermicro' }])).toBe('supermicro');
    expect(detectRedfishVendor([{ Manufacturer: 'Lenovo' }])).toBe('lenovo');
    expect(detectRedfishVendor([{ Manufacturer: 'Contoso' }])).toBe('generic');
  });

  it('falls back to the Oem section names (of the system or its manager)', () => {
    expect(detectRedfishVendor([{ Manufacturer: 'To Be Filled By O.E.M.', Oem: {} }, { Oem: { Hpe: {} } }])).toBe('hpe');
    expect(detectRedfishVendor([{ Oem: { Dell: { DellSystem: {} } } }])).toBe('dell');
    expect(detectRedfishVendor([undefined, { Oem: {} }])).toBe('generic');
  });

  it('switches each quirk for its vendor only', () => {
    expect(REDFISH_QUIRKS.hpe.overrideModeWritable).toBe(false);
    expect(REDFISH_QUIRKS.dell.overrideModeOwnPatch).toBe(true);
    expect(REDFISH_QUIRKS.supermicro.overrideModeAlwaysSent).toBe(true);
    expect(REDFISH_QUIRKS.lenovo.unusableMediaSlot('RDOC1')).toBe(true);
    expect(REDFISH_QUIRKS.lenovo.unusableMediaSlot('EXT1')).toBe(false);
    expect(REDFISH_QUIRKS.generic).toMatchObject({ overrideModeWritable: true, overrideModeOwnPatch: false, overrideModeAlwaysSent: false });
  });
});
