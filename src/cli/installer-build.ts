import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { CommandRegistrar } from './context.js';
import { ExitCode, UsageError } from './errors.js';
import { installerBuildCommand } from '../installer/index.js';
import { caBundleFrom } from './connect.js';
import { loadConfig } from '../config/load.js';
import { buildPlace, requireAdmin, uploadInstaller } from './controller-place.js';

/** The agent bundle `npm run build` produces beside the compiled CLI. */
export const AGENT_BUNDLE = fileURLToPath(new URL('../agent/agent.mjs', import.meta.url));

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
    // NOTE: the program's own --ca-bundle takes the flag wherever it is written; read both.
    .action(async (o: { dataDir?: string; force?: boolean; mirror?: string; caBundle?: string; iso?: boolean; config?: string; publicUrl?: string }, cmd: Command) => {
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
      const caBundle = caBundleFrom(o.caBundle, '--ca-bundle');
      if (!existsSync(AGENT_BUNDLE)) throw new UsageError(`the agent bundle ${AGENT_BUNDLE} is missing; run npm run build`);
      const code = await installerBuildCommand({
        dataDir: resolve(o.dataDir ?? ctx.env.PLINTH_DATA_DIR ?? './var'),
        agentBundle: AGENT_BUNDLE,
        ...(o.force ? { force: true } : {}),
        ...(o.mirror ? { mirror: o.mirror } : {}),
        ...(caBundle ? { caBundle } : {}),
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
