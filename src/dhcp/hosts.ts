import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Store } from '../store/database.js';
import { writeFileAtomic } from '../matching/atomic-file.js';

/** A name dnsmasq may hand out as a host name (one DNS label). */
const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * dnsmasq's `dhcp-hostsdir`: one file per known machine, `MAC,NAME` per MAC, so that DHCP
 * gives known machines their Plinth name; a machine with a boot address (given only when
 * Plinth serves addresses, dhcp.mode full) gets one line `MAC1,MAC2,…,ADDRESS,NAME`, its MACs
 * sharing that address (dnsmasq gives it to whichever asks: firmware, installer). Files are
 * replaced atomically (temporary file + rename), which dnsmasq notices without a restart;
 * dnsmasq only ever adds host records that way, so when a file is removed or loses lines the
 * caller sends dnsmasq SIGHUP (`sync` says so).
 */
export function hostsFileContent(name: string, macs: string[], address: string | null = null): string {
  const label = name.toLowerCase();
  const sorted = macs.slice().sort();
  const named = (fields: string[]) => (HOSTNAME.test(label) ? [...fields, label] : fields).join(',');
  if (address && sorted.length) return `${named([...sorted, address])}\n`;
  return sorted
    .map((mac) => named([mac]))
    .join('\n')
    .concat(sorted.length ? '\n' : '');
}

/** `addresses`: write the machines' boot addresses (only Plinth's own DHCP server, in full mode, hands addresses out). */
export async function syncHostsDir(store: Store, dir: string, opts: { addresses: boolean }): Promise<{ written: number; removed: number; reloadNeeded: boolean }> {
  // dnsmasq reads it after dropping to its unprivileged user (Debian: nobody).
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const rows = await store.db.selectFrom('machines').innerJoin('machine_macs', 'machine_macs.machine_id', 'machines.id').select(['machines.id', 'machines.name', 'machines.boot_address', 'machine_macs.mac']).execute();
  const wanted = new Map<string, { name: string; address: string | null; macs: string[] }>();
  for (const r of rows) {
    const m = wanted.get(r.id) ?? { name: r.name, address: opts.addresses ? r.boot_address : null, macs: [] };
    m.macs.push(r.mac);
    wanted.set(r.id, m);
  }
  let written = 0;
  let removed = 0;
  let reloadNeeded = false;
  const present = new Set((await readdir(dir)).filter((f) => f.endsWith('.hosts')));
  for (const [id, m] of wanted) {
    const file = `${id}.hosts`;
    const content = hostsFileContent(m.name, m.macs, m.address);
    const old = present.has(file) ? await readFile(join(dir, file), 'utf8').catch(() => null) : null;
    present.delete(file);
    if (old === content) continue;
    await writeFileAtomic(join(dir, file), content);
    written++;
    if (old !== null) reloadNeeded = true;
  }
  for (const file of present) {
    await unlink(join(dir, file)).catch(() => undefined);
    removed++;
    reloadNeeded = true;
  }
  return { written, removed, reloadNeeded };
}
