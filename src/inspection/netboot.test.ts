import { describe, expect, it } from 'vitest';
import { bmcAddressOf } from './netboot.js';

describe('the BMC address of an appliance, as an installer would read it in-band', () => {
  it.each([
    ['ipmi', '10.1.2.3', '10.1.2.3'],
    ['ipmi', '10.1.2.3:6230', '10.1.2.3'],
    ['ipmi', '[fd00::7]:623', 'fd00::7'],
    ['redfish', 'https://10.1.2.4/redfish/v1', '10.1.2.4'],
    ['redfish', 'https://[fd00::8]:8443', 'fd00::8'],
  ])('%s %s is %s', (type, address, host) => expect(bmcAddressOf(type, address)).toBe(host));

  it.each([
    ['ipmi', 'bmc-7.example'],
    ['redfish', 'https://bmc-7.example'],
    ['redfish', 'not a url'],
    ['libvirt', 'qemu+ssh://10.1.2.5/system'],
  ])('%s %s has no address to compare', (type, address) => expect(bmcAddressOf(type, address)).toBeNull());
});
