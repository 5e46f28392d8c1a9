import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { CommandRegistrar } from './context.js';
import { ExitCode, UsageError } from './errors.js';
import { installerBuildCommand, installerPlan, type InstallerExtras } from '../installer/index.js';
import type { PlinthError } from '../core/errors.js';
import { caBundleFrom } from './connect.js';
import { loadConfig } from '../config/load.js';
import { buildPlace, requireAdmin, uploadInstaller } from './controller-place.js';

/** The agent bundle `npm run build` produces beside the compiled CLI. */
export const AGENT_BUNDLE = fileURLToPath(new URL('../agent/agent.mjs', import.meta.url));

const collect = (v: string, p: string[]) => [...p, v];
const listOf = (s: string) => s.split(/[\s,]+/).filter(Boolean);

/**
 * The packages, modules and firmware to add: the installerBuild settings (plinth.yaml or
 * PLINTH_INSTALLER_BUILD_*) and the flags, each name once; bad names are refused before the build.
 */
export function installerExtras(o: { package: string[]; module: string[]; firmware: string[] }, env: Record<string, string | undefined>, configFile?: string): InstallerExtras | null {
  const file = configFile ?? env.PLINTH_CONFIG ?? 'plinth.yaml';
  const settings = loadConfig({ file, fileRequired: Boolean(configFile ?? env.PLINTH_CONFIG), env }).installerBuild;
  const extras = {
    packages: [...new Set([...listOf(settings.packages), ...o.package])],
    modules: [...new Set([...listOf(settings.modules), ...o.module])],
    firmware: [...new Set([...listOf(settings.firmware), ...o.firmware])],
  };
  try {
    installerPlan(extras);
  } catch (e) {
    const field = String((e as PlinthError).details?.field ?? 'packages').replace(/\[\d+\]$/, '');
    const flag = { packages: '--package', modules: '--module', firmware: '--firmware' }[field] ?? field;
    throw new UsageError(`${flag} (or installerBuild.${field}): ${(e as Error).message.replace(/^[^:]*: /, '')}`);
  }
  return extras.packages.length + extras.modules.length + extras.firmware.length > 0 ? extras : null;
}

export const registerInstallerBuild: CommandRegistrar = (installer, ctx) => {
  installer
    .command('build')
    .description('build the installer (kernel + initramfs with Node and the agent) from Debian packages; run on the controller host, as root')
    .option('--data-dir <dir>', "the controller's data directory (PLINTH_DATA_DIR, default ./var)")
    .option('--force', 'rebuild even when nothing changed')
    .option('--mirror <url>', 'Debian mirror (default http://deb.debian.org/debian)')
    .option('--ca-bundle <file>', 'PEM CA certificates the installer agent trusts when the controller serves HTTPS with a private CA')
    .option('--iso', "also build the installer ISO for virtual media (grub-mkrescue, BIOS and UEFI) that the controller serves at /boot/installer.iso")
    .option('--config <file>', 'the controller configuration the ISO is built for: its publicUrl and installerKernelArgs (PLINTH_CONFIG, default plinth.yaml)')
    .option('--public-url <url>', "the controller URL the ISO's installer reaches (PLINTH_PUBLIC_URL; default the configuration's publicUrl)")
    .option('--package <name>', 'a Debian package to add to the installer, with its dependencies (repeatable; e.g. sysbench, fio for health checks; setting installerBuild.packages)', collect, [])
    .option('--module <name>', 'a kernel module to keep in the installer beyond its own: a name (raid1) or a path below kernel/ (drivers/md/) (repeatable; setting installerBuild.modules)', collect, [])
    .option('--firmware <package>', "a firmware package from Debian's non-free-firmware (firmware-bnx2, intel-microcode…) (repeatable; setting installerBuild.firmware)", collect, [])
    // NOTE: the program's own --ca-bundle takes the flag wherever it is written; read both.
    .action(async (o: { dataDir?: string; force?: boolean; mirror?: string; caBundle?: string; iso?: boolean; config?: string; publicUrl?: string; package: string[]; module: string[]; firmware: string[] }, cmd: Command) => {
      o.caBundle ??= cmd.optsWithGlobals<{ caBundle?: string }>().caBundle;
      // Where the result must end up is settled before the (long, root-only) build: into the
      // controller's data directory when this host sees it, else built here and uploaded.
      const place = await buildPlace(ctx, cmd, o.dataDir);
      if (place.kind === 'remote') {
        if (o.iso) throw new UsageError(`--iso: the controller at ${place.url} builds its installer ISO itself on the first request for /boot/installer.iso; leave out --iso`);
        await requireAdmin(ctx, 'installer build');
        ctx.out.error(`the controller at ${place.url} keeps its data in ${place.controller.dataDir.path}, not visible here: building in ${place.dataDir}, then uploading`);
      }
      // The ISO carries the controller URL: resolved before the (long) build, so that a missing one fails at once.
      let iso: { publicUrl: string; kernelArgs: string } | undefined;
      if (o.iso) {
        const config = loadConfig({
          file: o.config ?? ctx.env.PLINTH_CONFIG ?? 'plinth.yaml',
          fileRequired: Boolean(o.config ?? ctx.env.PLINTH_CONFIG),
          env: ctx.env,
          flags: { ...(o.publicUrl ? { publicUrl: o.publicUrl } : {}), ...(o.dataDir ? { dataDir: o.dataDir } : {}) },
        });
        if (!config.publicUrl) throw new UsageError('--iso: the ISO carries the URL the installer reaches the controller at; set publicUrl (--public-url, PLINTH_PUBLIC_URL or the configuration)');
        iso = { publicUrl: config.publicUrl, kernelArgs: config.installerKernelArgs };
        o.dataDir ??= config.dataDir;
      }
      if (place.kind === 'local' && place.controller) o.dataDir = place.dataDir;
      const extras = installerExtras(o, ctx.env, o.config);
      const caBundle = caBundleFrom(o.caBundle, '--ca-bundle');
      if (!existsSync(AGENT_BUNDLE)) throw new UsageError(`the agent bundle ${AGENT_BUNDLE} is missing; run npm run build`);
      const code = await installerBuildCommand({
        dataDir: resolve(o.dataDir ?? ctx.env.PLINTH_DATA_DIR ?? './var'),
        agentBundle: AGENT_BUNDLE,
        ...(o.force ? { force: true } : {}),
        ...(o.mirror ? { mirror: o.mirror } : {}),
        ...(caBundle ? { caBundle } : {}),
        ...(extras ? { extras } : {}),
        ...(iso ? { iso } : {}),
        out: (t) => ctx.out.line(t.trimEnd()),
        err: (t) => ctx.out.error(t.trimEnd()),
      });
      if (code !== 0) throw new ExitCode(code);
      if (place.kind === 'remote') {
        const sent = await uploadInstaller(ctx, place.dataDir);
        ctx.out.line(`uploaded to ${place.url}: ${sent.map((f) => `${f.file} (${f.bytes} bytes)`).join(', ')}; machines boot it now`);
      }
    });
};
