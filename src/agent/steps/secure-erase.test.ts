import { describe, expect, it } from 'vitest';
import type { BlockDevice } from './block-device.js';
import { ToolError, type Exec } from './exec.js';
import { detectSecureErase, parseHdparmSecurity, parseNvmeIdCtrl, runSecureErase } from './secure-erase.js';

/** The Security section as hdparm -I lays it out (tabs included), for a drive in the given states. */
function hdparmOutput(o: { frozen?: boolean; enabled?: boolean; enhanced?: boolean } = {}): string {
  const flag = (on: boolean | undefined, word: string) => (on ? `\t\t${word}` : `\tnot\t${word}`);
  return [
    '/dev/sda:',
    '',
    'ATA device, with non-removable media',
    '\tModel Number:       INTEL SSDSC2KB120G8',
    'Commands/features:',
    '\tEnabled\tSupported:',
    '\t   *\tSecurity Mode feature set',
    'Security: ',
    '\tMaster password revision code = 65534',
    '\t\tsupported',
    flag(o.enabled, 'enabled'),
    '\tnot\tlocked',
    flag(o.frozen, 'frozen'),
    '\tnot\texpired: security count',
    ...(o.enhanced ? ['\t\tsupported: enhanced erase'] : []),
    `\t4min for SECURITY ERASE UNIT.${o.enhanced ? ' 6min for ENHANCED SECURITY ERASE UNIT.' : ''}`,
    'Logical Unit WWN Device Identifier: 55cd2e414f8a1b2c',
    '\tNAA\t\t: 5',
    'Checksum: correct',
  ].join('\n');
}

const sda: BlockDevice = { path: '/dev/sda', name: 'sda', sizeBytes: 120e9 };
const nvme: BlockDevice = { path: '/dev/nvme0n1', name: 'nvme0n1', sizeBytes: 960e9 };

/** A fake tool runner: answers by command line, records what ran. */
function fakeExec(answers: Record<string, string | Error>): Exec & { ran: string[] } {
  const ran: string[] = [];
  const exec = (async (command: string, args: readonly string[]) => {
    const line = [command, ...args].join(' ');
    ran.push(line);
    const key = Object.keys(answers).find((k) => line.startsWith(k));
    const answer = key === undefined ? new ToolError(command, 'missing', null, '', `${command} is not installed`) : answers[key]!;
    if (answer instanceof Error) throw answer;
    return { stdout: answer, stderr: '', exitCode: 0 };
  }) as Exec & { ran: string[] };
  exec.ran = ran;
  return exec;
}

describe('ATA security from hdparm -I', () => {
  it('reads the states, enhanced erase and the estimates', () => {
    expect(parseHdparmSecurity(hdparmOutput({ enhanced: true }))).toEqual({
      supported: true,
      enabled: false,
      locked: false,
      frozen: false,
      enhancedErase: true,
      eraseMinutes: 4,
      enhancedEraseMinutes: 6,
    });
    expect(parseHdparmSecurity(hdparmOutput({ frozen: true }))).toMatchObject({ frozen: true, enhancedErase: false, enhancedEraseMinutes: null });
    expect(parseHdparmSecurity('/dev/vda:\n HDIO_DRIVE_CMD(identify) failed: Inappropriate ioctl for device\n')).toBeNull();
  });

  it('takes states it cannot read as the unsafe answer', () => {
    expect(parseHdparmSecurity('Security: \n\t\tsupported\n')).toMatchObject({ supported: true, enabled: true, locked: true, frozen: true });
  });
});

describe('detectSecureErase', () => {
  it('uses ATA security erase when supported and not frozen', async () => {
    const exec = fakeExec({ 'hdparm -I /dev/sda': hdparmOutput({ enhanced: true }) });
    expect(await detectSecureErase(sda, exec)).toEqual({ method: { kind: 'ata-secure-erase', enhanced: true, estimateMinutes: 6 }, reason: 'ATA enhanced security erase' });
  });

  it('falls back when the drive is frozen, has a password, or hdparm is missing', async () => {
    expect(await detectSecureErase(sda, fakeExec({ 'hdparm -I': hdparmOutput({ frozen: true }) }))).toEqual({
      method: null,
      reason: 'ATA security is frozen (the firmware froze it at boot)',
    });
    expect((await detectSecureErase(sda, fakeExec({ 'hdparm -I': hdparmOutput({ enabled: true }) }))).reason).toBe('ATA security already has a password set');
    expect((await detectSecureErase(sda, fakeExec({}))).reason).toBe('hdparm -I failed: hdparm is not installed');
  });

  it('uses NVMe Format when the controller supports it', async () => {
    const exec = fakeExec({ 'nvme id-ctrl /dev/nvme0 --output-format=json': JSON.stringify({ oacs: 0x5f, fna: 0x4 }) });
    expect(await detectSecureErase(nvme, exec)).toEqual({ method: { kind: 'nvme-format', controller: '/dev/nvme0', namespace: '/dev/nvme0n1' }, reason: 'Format NVM with user data erase' });
    const noFormat = fakeExec({ 'nvme id-ctrl': JSON.stringify({ oacs: 0x5d, fna: 0 }) });
    expect((await detectSecureErase(nvme, noFormat)).method).toBeNull();
    expect(parseNvmeIdCtrl(JSON.stringify({ oacs: 2, fna: 6 }))).toEqual({ formatSupported: true, cryptoEraseSupported: true, eraseCoversAllNamespaces: true });
  });

  it('offers nothing for other disks (virtio, loop)', async () => {
    const exec = fakeExec({});
    expect(await detectSecureErase({ path: '/dev/vdb', name: 'vdb', sizeBytes: 1 }, exec)).toEqual({ method: null, reason: 'vdb is neither NVMe nor SCSI/ATA' });
    expect(exec.ran).toEqual([]);
  });
});

describe('runSecureErase', () => {
  it('sets a password, erases, and checks the password is gone', async () => {
    const exec = fakeExec({ 'hdparm --user-master': '', 'hdparm -I': hdparmOutput() });
    await runSecureErase(sda, { kind: 'ata-secure-erase', enhanced: false, estimateMinutes: 4 }, exec, () => undefined);
    expect(exec.ran).toEqual([
      'hdparm --user-master u --security-set-pass plinth-erase /dev/sda',
      'hdparm --user-master u --security-erase plinth-erase /dev/sda',
      'hdparm -I /dev/sda',
    ]);
  });

  it('clears the password when the erase fails, and rejects', async () => {
    const exec = fakeExec({
      'hdparm --user-master u --security-erase ': new Error('SECURITY_ERASE: Input/output error'),
      'hdparm --user-master': '',
    });
    await expect(runSecureErase(sda, { kind: 'ata-secure-erase', enhanced: false, estimateMinutes: 4 }, exec, () => undefined)).rejects.toThrow('SECURITY_ERASE: Input/output error');
    expect(exec.ran.at(-1)).toBe('hdparm --user-master u --security-disable plinth-erase /dev/sda');
  });

  it('formats an NVMe namespace with user data erase', async () => {
    const exec = fakeExec({ 'nvme format': '' });
    await runSecureErase(nvme, { kind: 'nvme-format', controller: '/dev/nvme0', namespace: '/dev/nvme0n1' }, exec, () => undefined);
    expect(exec.ran).toEqual(['nvme format /dev/nvme0n1 --ses=1 --force --timeout=7200000']);
  });
});
