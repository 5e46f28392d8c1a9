import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sharedInstaller } from './e2e.js';
import { BIN } from './plinth-process.js';
import type { TestNetwork } from './peers/netns.js';

const run = promisify(execFile);

/**
 * Readies a `plinth serve` data directory for a controller on a test network: the shared
 * installer linked where the controller serves it, and the directory open to dnsmasq, which
 * reads its hosts directory as an unprivileged user.
 */
export async function linkSharedInstaller(dataDir: string): Promise<void> {
  const files = await sharedInstaller();
  mkdirSync(join(dataDir, 'boot', 'installer'), { recursive: true });
  symlinkSync(files.kernel, join(dataDir, 'boot', 'installer', 'vmlinuz'));
  symlinkSync(files.initrd, join(dataDir, 'boot', 'installer', 'initrd.img'));
  chmodSync(dataDir, 0o711);
}

/**
 * The CLI run inside a namespace of the test network, where the controller is reached (with
 * the admin token `plinth serve` wrote into its data directory); answers `--json`, parsed.
 */
export function namespaceCli(o: { net: () => TestNetwork; ns: string; dataDir: string; url: () => string; env?: Record<string, string> }) {
  return async (...args: string[]) => {
    const token = readFileSync(join(o.dataDir, 'admin.token'), 'utf8').trim();
    const { stdout } = await run(...o.net().command(o.ns, [process.execPath, BIN, ...args, '--json']), {
      env: { ...process.env, PLINTH_URL: o.url(), PLINTH_TOKEN: token, ...o.env },
    });
    return JSON.parse(stdout);
  };
}
