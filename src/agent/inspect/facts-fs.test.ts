import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectBootMode } from './boot-mode.js';
import { nodeFactsFs } from './facts-fs.js';

describe('nodeFactsFs over a fake /sys tree', () => {
  let root: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'plinth-facts-fs-'));
    await mkdir(join(root, 'sys/class/net/eth0/device'), { recursive: true });
    await mkdir(join(root, 'sys/bus/pci/drivers/e1000'), { recursive: true });
    await writeFile(join(root, 'sys/class/net/eth0/carrier'), '1\n');
    await symlink('../../../../bus/pci/drivers/e1000', join(root, 'sys/class/net/eth0/device/driver'));
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('reads files, and answers null for missing ones', async () => {
    const fs = nodeFactsFs(root);
    expect(await fs.readText('/sys/class/net/eth0/carrier')).toBe('1\n');
    expect(await fs.readText('/sys/class/net/eth9/carrier')).toBeNull();
  });

  it('lists directories, and answers null for missing ones', async () => {
    const fs = nodeFactsFs(root);
    expect(await fs.listDir('/sys/class/net')).toEqual(['eth0']);
    expect(await fs.listDir('/sys/class/dmi/id')).toBeNull();
  });

  it('reads links', async () => {
    const fs = nodeFactsFs(root);
    expect(await fs.readLink('/sys/class/net/eth0/device/driver')).toBe('../../../../bus/pci/drivers/e1000');
    expect(await fs.readLink('/sys/class/net/eth0/carrier')).toBeNull();
  });

  it('decides the boot mode from /sys/firmware/efi', async () => {
    const fs = nodeFactsFs(root);
    expect(await detectBootMode(fs)).toBe('bios');
    await mkdir(join(root, 'sys/firmware/efi'), { recursive: true });
    expect(await fs.exists('/sys/firmware/efi')).toBe(true);
    expect(await detectBootMode(fs)).toBe('uefi');
  });
});
