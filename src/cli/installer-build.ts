import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { CommandRegistrar } from './context.js';
import { ExitCode, UsageError } from './errors.js';
import { installerBuildCommand } from '../installer/index.js';
import { caBundleFrom } from './connect.js';

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
    // NOTE: the program's own --ca-bundle takes the flag wherever it is written; read both.
    .action(async (o: { dataDir?: string; force?: boolean; mirror?: string; caBundle?: string }, cmd: Command) => {
      o.caBundle ??= cmd.optsWithGlobals<{ caBundle?: string }>().caBundle;
      const caBundle = caBundleFrom(o.caBundle, '--ca-bundle');
      if (!existsSync(AGENT_BUNDLE)) throw new UsageError(`the agent bundle ${AGENT_BUNDLE} is missing; run npm run build`);
      const code = await installerBuildCommand({
        dataDir: resolve(o.dataDir ?? ctx.env.PLINTH_DATA_DIR ?? './var'),
        agentBundle: AGENT_BUNDLE,
        ...(o.force ? { force: true } : {}),
        ...(o.mirror ? { mirror: o.mirror } : {}),
        ...(caBundle ? { caBundle } : {}),
        out: (t) => ctx.out.line(t.trimEnd()),
        err: (t) => ctx.out.error(t.trimEnd()),
      });
      if (code !== 0) throw new ExitCode(code);
    });
};
