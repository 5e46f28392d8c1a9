/**
 * ipmitool output as recorded from ipmitool 1.8.19 against OpenIPMI's ipmi_sim (Debian 12),
 * and the arguments Plinth hands it.
 */
import { describe, expect, it } from 'vitest';
import { bootdevOutcome, classifyIpmiFailure, parseBootFlags, IpmiTool, ipmiTarget, parseGuid, parseIpmiAddress, parsePowerStatus } from './ipmitool.js';

const VERBOSE_PREAMBLE = 'Loading IANA PEN Registry...\nRunning Get VSO Capabilities my_addr 0x20, transit 0, target 0x20\nInvalid completion code received: Invalid command\nDiscovered IPMB address 0x0\n';

describe('ipmitool output', () => {
  it('tells a wrong password, an unknown user, an absent BMC and a refused cipher suite apart', () => {
    expect(classifyIpmiFailure('Loading IANA PEN Registry...\n> RAKP 2 HMAC is invalid\nError: Unable to establish IPMI v2 / RMCP+ session\n').failure).toBe('auth');
    expect(classifyIpmiFailure('RAKP 2 message indicates an error : unauthorized name\nError: Unable to establish IPMI v2 / RMCP+ session\n').failure).toBe('auth');
    expect(
      classifyIpmiFailure('Get Auth Capabilities error\nError issuing Get Channel Authentication Capabilities request\nError: Unable to establish IPMI v2 / RMCP+ session\n').failure,
    ).toBe('unreachable');
    expect(classifyIpmiFailure('Error in open session response message : invalid authentication algorithm\n\nError: Unable to establish IPMI v2 / RMCP+ session\n').failure).toBe('protocol');
  });

  it('reads the power status', () => {
    expect(parsePowerStatus('Chassis Power is on\n')).toBe('on');
    expect(parsePowerStatus('Chassis Power is off\n')).toBe('off');
    expect(parsePowerStatus('garbage')).toBeUndefined();
  });

  it('judges bootdev by the reply, not the exit code (ipmitool exits 0 on a rejected parameter)', () => {
    expect(bootdevOutcome({ exitCode: 0, stdout: 'Set Boot Device to pxe\n', stderr: VERBOSE_PREAMBLE }, 'pxe')).toEqual({ ok: true });
    const rejected = bootdevOutcome({ exitCode: 0, stdout: '', stderr: `${VERBOSE_PREAMBLE}Set Chassis Boot Parameter 5 failed: Unspecified error\n` }, 'pxe');
    expect(rejected).toMatchObject({ ok: false, unsupported: false, detail: 'Set Chassis Boot Parameter 5 failed: Unspecified error' });
    const invalid = bootdevOutcome({ exitCode: 0, stdout: '', stderr: 'Set Chassis Boot Parameter 5 failed: Invalid data field in request\n' }, 'pxe');
    expect(invalid).toMatchObject({ ok: false, unsupported: true });
  });

  it('reads boot flags from bootparam get 5', () => {
    // ipmi_sim after `chassis bootdev pxe options=persistent,efiboot`: the device only.
    const sim = 'Boot parameter version: 1\nBoot parameter 5 is valid/unlocked\nBoot parameter data: 0004000000\n Boot Flags :\n   - Boot Flag Invalid\n';
    expect(parseBootFlags(sim)).toEqual({ valid: false, persistent: false, efi: false, device: 'pxe' });
    expect(parseBootFlags('Boot parameter data: e008000000\n')).toEqual({ valid: true, persistent: true, efi: true, device: 'disk' });
    expect(parseBootFlags('Boot parameter data: a014000000\n')).toEqual({ valid: true, persistent: false, efi: true, device: 'cdrom' });
    expect(parseBootFlags('Error: no data')).toBeUndefined();
  });

  it('reads the system GUID', () => {
    const out = 'System GUID   : efcdab89-6745-23a1-efcd-ab89674523a1\nGUID Encoding : IPMI\n';
    expect(parseGuid(out)).toBe('efcdab89-6745-23a1-efcd-ab89674523a1');
  });

  it('reads a System GUID ipmitool could not decode (printed as 16 undecoded bytes) in the order the bytes came', () => {
    // ipmitool 1.8.19 against a BMC sending 33 22 11 00 55 44 77 66 88 99 aa bb cc dd ee ff (no valid version nibble anywhere).
    expect(parseGuid('System GUID   : 33221100554477668899AABBCCDDEEFF\n')).toBe('33221100-5544-7766-8899-aabbccddeeff');
    expect(parseGuid('Get System GUID command failed\n')).toBeUndefined();
  });
});

describe('ipmitool invocation', () => {
  it('parses BMC addresses with and without port, IPv4 and IPv6', () => {
    expect(parseIpmiAddress('10.0.0.5')).toEqual({ host: '10.0.0.5', port: 623 });
    expect(parseIpmiAddress('10.0.0.5:6230')).toEqual({ host: '10.0.0.5', port: 6230 });
    expect(parseIpmiAddress('[fd00::5]:6230')).toEqual({ host: 'fd00::5', port: 6230 });
    expect(parseIpmiAddress('fd00::5')).toEqual({ host: 'fd00::5', port: 623 });
  });

  it('passes the password through the environment (-E), never as an argument', () => {
    const tool = new IpmiTool(ipmiTarget({ address: '10.0.0.5', username: 'root', password: 'calvin-secret', options: { cipherSuite: 17 } }));
    const args = tool.baseArgs(5_000);
    expect(args).toContain('-E');
    expect(args).not.toContain('-P');
    expect(args.join(' ')).not.toContain('calvin-secret');
    expect(args.join(' ')).toContain('-I lanplus -H 10.0.0.5 -p 623 -U root -E -C 17');
  });
});
