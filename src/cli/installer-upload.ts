import { resolve } from 'node:path';
import type { CommandRegistrar } from './context.js';
import { requireAdmin, uploadInstaller } from './controller-place.js';

/**
 * `plinth installer upload`: sends an installer built on this host to the controller, for a
 * controller whose data directory is elsewhere (`installer build` does it by itself then).
 */
export const registerInstallerUpload: CommandRegistrar = (installer, ctx) => {
  installer
    .command('upload')
    .description("upload the installer built here (DATA_DIR/boot/installer) to the controller, which serves it to booting machines at once (admin)")
    .option('--data-dir <dir>', 'where it was built (PLINTH_DATA_DIR, default ./var)')
    .option('--json', 'print JSON')
    .action(async (o: { dataDir?: string; json?: boolean }) => {
      await requireAdmin(ctx, 'installer upload');
      const sent = await uploadInstaller(ctx, resolve(o.dataDir ?? ctx.env.PLINTH_DATA_DIR ?? './var'));
      if (o.json) return ctx.out.json(sent);
      for (const f of sent) ctx.out.line(`${f.file}  ${f.bytes} bytes  sha256 ${f.sha256}`);
      ctx.out.line(`uploaded to ${ctx.client().url}; machines boot it now`);
    });
};
