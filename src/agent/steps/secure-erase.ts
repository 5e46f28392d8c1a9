import { promises as fsp } from 'node:fs';
import type { BlockDevice } from './block-device.js';
import { type Exec } from './exec.js';

/**
 * The drive's own erase, where it has one the agent can use: NVMe Format NVM with Secure
 * Erase Settings = 1 (user data erase), or ATA SECURITY ERASE UNIT. Detection is
 * conservative: anything unclear means "not available", and the caller overwrites instead.
 */

export interface AtaSecurity {
  supported: boolean;
  enabled: boolean;
  locked: boolean;
  frozen: boolean;
  enhancedErase: boolean;
  /** The drive's own estimates, in minutes (null when it gives none). */
  eraseMinutes: number | null;
  enhancedEraseMinutes: number | null;
}

/** The "Security:" section of `hdparm -I`; null when the drive has none (not ATA, or a bridge hides it). */
export function parseHdparmSecurity(text: string): AtaSecurity | null {
  const lines = text.split('\n');
  const heading = lines.findIndex((l) => /^Security:\s*$/.test(l));
  if (heading < 0) return null;
  // The section is the indented lines under the heading, up to the next heading.
  const body: string[] = [];
  for (const line of lines.slice(heading + 1)) {
    if (line !== '' && !/^\s/.test(line)) break;
    body.push(line);
  }
  const section = body.join('\n');
  // NOTE: hdparm prints each state as "\tnot\tenabled" or "\t\tenabled": a tab, not a space, follows "not".
  const state = (word: string): boolean | null => {
    if (new RegExp(`^\\s*not\\s+${word}\\s*$`, 'm').test(section)) return false;
    if (new RegExp(`^\\s*${word}\\s*$`, 'm').test(section)) return true;
    return null;
  };
  const minutes = (what: string) => {
    const m = new RegExp(`(\\d+)\\s*min for ${what}`).exec(section);
    return m ? Number(m[1]) : null;
  };
  return {
    supported: state('supported') === true,
    // Unknown states count as the unsafe answer.
    enabled: state('enabled') !== false,
    locked: state('locked') !== false,
    frozen: state('frozen') !== false,
    enhancedErase: /supported:\s*enhanced erase/.test(section),
    eraseMinutes: minutes('SECURITY ERASE UNIT'),
    enhancedEraseMinutes: minutes('ENHANCED SECURITY ERASE UNIT'),
  };
}

export interface NvmeController {
  /** Optional Admin Command Support bit 1: Format NVM is supported. */
  formatSupported: boolean;
  /** Format NVM Attributes bit 2: cryptographic erase is supported. */
  cryptoEraseSupported: boolean;
  /** Format NVM Attributes bit 1: a secure erase covers every namespace of the controller. */
  eraseCoversAllNamespaces: boolean;
}

/** `nvme id-ctrl DEVICE --output-format=json`. */
export function parseNvmeIdCtrl(json: string): NvmeController {
  const ctrl = JSON.parse(json) as { oacs?: unknown; fna?: unknown };
  const oacs = typeof ctrl.oacs === 'number' ? ctrl.oacs : 0;
  const fna = typeof ctrl.fna === 'number' ? ctrl.fna : 0;
  return { formatSupported: (oacs & 0b10) !== 0, cryptoEraseSupported: (fna & 0b100) !== 0, eraseCoversAllNamespaces: (fna & 0b10) !== 0 };
}

export type SecureEraseMethod =
  | { kind: 'nvme-format'; controller: string; namespace: string }
  | { kind: 'ata-secure-erase'; enhanced: boolean; estimateMinutes: number | null };

/** The secure erase this disk offers, or null with the reason (for the log). */
export async function detectSecureErase(disk: BlockDevice, exec: Exec): Promise<{ method: SecureEraseMethod | null; reason: string }> {
  const nvme = /^(nvme\d+)n\d+$/.exec(disk.name);
  if (nvme) {
    const controller = `/dev/${nvme[1]}`;
    const id = await exec('nvme', ['id-ctrl', controller, '--output-format=json']).catch((e: Error) => e);
    if (id instanceof Error) return { method: null, reason: `nvme id-ctrl failed: ${id.message}` };
    let ctrl: NvmeController;
    try {
      ctrl = parseNvmeIdCtrl(id.stdout);
    } catch {
      return { method: null, reason: 'nvme id-ctrl printed no JSON' };
    }
    if (!ctrl.formatSupported) return { method: null, reason: 'the controller does not support Format NVM' };
    return { method: { kind: 'nvme-format', controller, namespace: disk.path }, reason: 'Format NVM with user data erase' };
  }
  if (!/^sd[a-z]+$/.test(disk.name)) return { method: null, reason: `${disk.name} is neither NVMe nor SCSI/ATA` };
  // NOTE: USB bridges pass ATA security commands through unreliably; a bridge that times out
  // mid-erase leaves the drive locked with our password. Overwriting is slower but safe.
  const sysfsPath = await fsp.realpath(`/sys/class/block/${disk.name}`).catch(() => '');
  if (sysfsPath.includes('/usb')) return { method: null, reason: 'the disk is behind a USB bridge' };
  const info = await exec('hdparm', ['-I', disk.path]).catch((e: Error) => e);
  if (info instanceof Error) return { method: null, reason: `hdparm -I failed: ${info.message}` };
  const security = parseHdparmSecurity(info.stdout);
  if (security === null) return { method: null, reason: 'the drive reports no ATA security feature set' };
  if (!security.supported) return { method: null, reason: 'ATA security is not supported' };
  if (security.frozen) return { method: null, reason: 'ATA security is frozen (the firmware froze it at boot)' };
  if (security.enabled || security.locked) return { method: null, reason: 'ATA security already has a password set' };
  return {
    method: {
      kind: 'ata-secure-erase',
      enhanced: security.enhancedErase,
      estimateMinutes: security.enhancedErase ? security.enhancedEraseMinutes : security.eraseMinutes,
    },
    reason: security.enhancedErase ? 'ATA enhanced security erase' : 'ATA security erase',
  };
}

/** A temporary ATA user password; the erase clears it. */
const ATA_PASSWORD = 'plinth-erase';

/** Runs the erase; rejects when the drive did not do it (the caller falls back to overwriting). */
export async function runSecureErase(disk: BlockDevice, method: SecureEraseMethod, exec: Exec, log: (line: string) => void): Promise<void> {
  if (method.kind === 'nvme-format') {
    // --ses=1: user data erase. --force: no "are you sure" pause. The LBA format stays as it is.
    await exec('nvme', ['format', method.namespace, '--ses=1', '--force', '--timeout=7200000'], { timeoutMs: 2 * 3600_000 });
    return;
  }
  const limitMs = Math.max(60, (method.estimateMinutes ?? 600) * 2) * 60_000;
  await exec('hdparm', ['--user-master', 'u', '--security-set-pass', ATA_PASSWORD, disk.path]);
  try {
    await exec('hdparm', ['--user-master', 'u', method.enhanced ? '--security-erase-enhanced' : '--security-erase', ATA_PASSWORD, disk.path], { timeoutMs: limitMs });
  } catch (e) {
    // Leave no password behind on a drive whose erase failed: it would stay locked.
    await exec('hdparm', ['--user-master', 'u', '--security-disable', ATA_PASSWORD, disk.path]).catch((d: Error) => log(`${disk.name}: could not clear the ATA password after the failed erase: ${d.message}`));
    throw e;
  }
  const after = parseHdparmSecurity((await exec('hdparm', ['-I', disk.path])).stdout);
  if (after?.enabled) throw new Error('the ATA password is still set after the erase');
}
