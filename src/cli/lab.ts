import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CommandRegistrar } from './context.js';
import { collect, positiveInt } from './context.js';
import { UsageError } from './errors.js';
import { normalizeMac } from '../core/mac.js';
import { parseSize as parseSizeText } from '../core/size.js';
import type { VmSpec } from '../lab/vm.js';

/** Sizes like 8G, 512M, 2T → bytes. */
function parseSize(text: string, flag: string): number {
  const bytes = parseSizeText(text);
  if (bytes === null) throw new UsageError(`${flag}: '${text}' is not a size (e.g. 8G, 512M)`);
  return bytes;
}

/** The lab's VMs and provider, loaded when a lab command runs (QEMU drivers are not needed for help). */
const labProvider = () => import('../lab/provider.js');

const labDir = (o: { dir?: string }, env: NodeJS.ProcessEnv) => resolve(o.dir ?? join(env.PLINTH_DATA_DIR ?? './var', 'lab'));

/**
 * `plinth lab`: the local QEMU lab — virtual machines with chosen SMBIOS identity, disks and
 * NICs that network-boot from the controller. Register the lab directory as a `qemu`
 * appliance to power them through Plinth: `plinth appliance register --name lab --type qemu
 * --address $PWD/var/lab`, then `plinth appliance enlist lab --inspect`.
 */
export const registerLab = (program: Parameters<CommandRegistrar>[0], ctx: Parameters<CommandRegistrar>[1]): void => {
  const lab = program.command('lab').description('the local QEMU lab: virtual machines to try the whole flow on');
  lab
    .command('create')
    .description('define a lab VM (started by powering it on through a qemu appliance)')
    .argument('<name>', 'VM name')
    .option('--dir <dir>', 'lab directory (default $PLINTH_DATA_DIR/lab, i.e. ./var/lab)')
    .option('--mac <mac>', 'NIC MAC address (repeatable; default one random 52:54:00 address)', collect, [])
    .option('--disk <size>', 'a virtio disk of this size (repeatable; default one 8G disk)', collect, [])
    .option('--memory <MiB>', 'memory in MiB', '1536')
    .option('--cpus <n>', 'virtual CPUs', '1')
    .option('--firmware <bios|uefi>', 'firmware', 'bios')
    .option('--serial <serial>', 'SMBIOS system serial number')
    .option('--uuid <uuid>', 'SMBIOS system UUID (default random)')
    .option('--manufacturer <name>', 'SMBIOS manufacturer', 'Plinth Lab')
    .option('--product <name>', 'SMBIOS product name', 'Lab VM')
    .option('--asset-tag <tag>', 'SMBIOS chassis asset tag')
    .option('--boot-url <url>', 'the boot file DHCP hands iPXE (default http://10.0.2.2:<controller port>/boot.ipxe)')
    .option('--ssh-port <port>', 'forward this host port (127.0.0.1) to the VM\'s SSH port')
    .action(async (name: string, o: Record<string, string | string[] | undefined> & { mac: string[]; disk: string[] }) => {
      const { LabDir } = await labProvider();
      if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) throw new UsageError(`'${name}' is not a valid VM name (a-z, 0-9, hyphens)`);
      const dir = labDir(o as { dir?: string }, ctx.env);
      const l = new LabDir(dir);
      if (existsSync(l.path(name))) throw new UsageError(`lab VM '${name}' already exists in ${dir}`);
      const macs = o.mac.length ? o.mac : [`52:54:00:${randomBytes(3).toString('hex').match(/../g)!.join(':')}`];
      const norm = macs.map((m) => normalizeMac(m) ?? (() => { throw new UsageError(`--mac: '${m}' is not a MAC address`); })());
      if (o.firmware !== 'bios' && o.firmware !== 'uefi') throw new UsageError(`--firmware: '${o.firmware}' must be bios or uefi`);
      const controllerPort = new URL(ctx.env.PLINTH_URL ?? 'http://127.0.0.1:7708').port || '80';
      const bootUrl = (o.bootUrl as string | undefined) ?? `http://10.0.2.2:${controllerPort}/boot.ipxe`;
      const sizes = (o.disk.length ? o.disk : ['8G']).map((d) => parseSize(d, '--disk'));
      const spec: VmSpec = {
        name,
        memoryMiB: positiveInt(String(o.memory), '--memory'),
        cpus: positiveInt(String(o.cpus), '--cpus'),
        firmware: o.firmware,
        smbios: {
          uuid: (o.uuid as string | undefined) ?? randomUUID(),
          serial: (o.serial as string | undefined) ?? `LAB-${name.toUpperCase()}`,
          manufacturer: String(o.manufacturer),
          product: String(o.product),
          ...(o.assetTag ? { assetTag: String(o.assetTag) } : {}),
        },
        disks: sizes.map((sizeBytes, i) => ({ path: join(dir, 'disks', `${name}-${i}.qcow2`), sizeBytes, serial: `${name}-d${i}` })),
        nics: norm.map((mac, i) => ({
          mac,
          ...(i === 0 ? { bootUrl } : {}),
          ...(i === 0 && o.sshPort ? { hostForwards: [{ hostPort: positiveInt(String(o.sshPort), '--ssh-port'), guestPort: 22 }] } : {}),
        })),
        bootOrder: ['network', 'disk'],
      };
      l.write(spec);
      ctx.out.line(`defined lab VM ${name} in ${dir} (${norm.join(', ')}; boots from ${bootUrl})`);
    });
  lab
    .command('list')
    .alias('ls')
    .description('list lab VMs and whether they run')
    .option('--dir <dir>', 'lab directory')
    .option('--json', 'print JSON')
    .action(async (o: { dir?: string; json?: boolean }) => {
      const dir = labDir(o, ctx.env);
      const { LabProvider } = await labProvider();
      const systems = await new LabProvider({ address: dir }).management.listSystems!({ timeoutMs: 5000, log: { debug() {}, info() {}, warn() {} } });
      if (o.json) return ctx.out.json(systems);
      ctx.out.table(systems.map((s) => ({ name: s.name, power: s.powerState, serial: s.serial, uuid: s.systemUuid, macs: s.macs.join(',') })), ['name', 'power', 'serial', 'uuid', 'macs']);
    });
  lab
    .command('console')
    .description("print a lab VM's serial console")
    .argument('<name>', 'VM name')
    .option('--dir <dir>', 'lab directory')
    .action((name: string, o: { dir?: string }) => {
      const p = join(labDir(o, ctx.env), 'run', `${name}.serial.log`);
      if (!existsSync(p)) throw new UsageError(`no console output for '${name}' yet (${p})`);
      ctx.out.line(readFileSync(p, 'utf8'));
    });
  lab
    .command('delete')
    .alias('rm')
    .description('remove a lab VM definition (power it off first)')
    .argument('<name>', 'VM name')
    .option('--dir <dir>', 'lab directory')
    .action(async (name: string, o: { dir?: string }) => {
      const dir = labDir(o, ctx.env);
      const { LabDir, LabProvider } = await labProvider();
      const p = new LabProvider({ address: dir });
      if ((await p.power.getPowerState(name, { timeoutMs: 5000, log: { debug() {}, info() {}, warn() {} } })) === 'on') {
        throw new UsageError(`lab VM '${name}' is running; power it off first`);
      }
      new LabDir(dir).remove(name);
      ctx.out.line(`deleted lab VM ${name}`);
    });
};
