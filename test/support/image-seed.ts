/**
 * A cloud-init NoCloud seed for lab VMs: a small FAT disk labelled CIDATA holding meta-data,
 * user-data and network-config, made with mkfs.vfat and mtools (no mount needed).
 */
import { execFile } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';

const execFileAsync = promisify(execFile);

export interface NoCloudSeed {
  instanceId: string;
  hostname: string;
  /** The #cloud-config document (an object, rendered to YAML). */
  userData: Record<string, unknown>;
  /** network-config version 2 (an object, rendered to YAML); omitted: cloud-init's fallback. */
  networkConfig?: Record<string, unknown>;
}

export function renderSeedFiles(seed: NoCloudSeed): Record<string, string> {
  const files: Record<string, string> = {
    'meta-data': stringify({ 'instance-id': seed.instanceId, 'local-hostname': seed.hostname }),
    'user-data': `#cloud-config\n${stringify(seed.userData)}`,
  };
  if (seed.networkConfig) files['network-config'] = stringify(seed.networkConfig);
  return files;
}

/** Writes the seed disk (raw) to `path`. */
export async function makeNoCloudSeedDisk(path: string, seed: NoCloudSeed): Promise<void> {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, 4 * 1024 * 1024);
  } finally {
    closeSync(fd);
  }
  await execFileAsync('mkfs.vfat', ['-n', 'CIDATA', path]);
  const staging = mkdtempSync(join(tmpdir(), 'image-seed-'));
  try {
    const names = Object.entries(renderSeedFiles(seed)).map(([name, content]) => {
      writeFileSync(join(staging, name), content);
      return join(staging, name);
    });
    await execFileAsync('mcopy', ['-i', path, ...names, '::/'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
