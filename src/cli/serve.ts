import type { CommandRegistrar } from './context.js';

interface ServeOptions {
  config?: string;
  listen?: string;
  dataDir?: string;
  databaseUrl?: string;
  publicUrl?: string;
  logLevel?: string;
  tftp?: string | boolean;
  dhcp?: string;
  dhcpInterface?: string;
  dhcpRange?: string;
}

/** `plinth serve`: the controller (what `npm start` runs). */
export const registerServe: CommandRegistrar = (parent, ctx) => {
  parent
    .command('serve')
    .description('run the controller: API, boot service, lifecycle engine')
    .option('-c, --config <file>', 'configuration file (default ./plinth.yaml if present)')
    .option('--listen <host:port>', 'address to listen on (PLINTH_LISTEN, default 0.0.0.0:7708)')
    .option('--data-dir <dir>', 'data directory (PLINTH_DATA_DIR, default ./var)')
    .option('--database-url <url>', 'postgres://… (PLINTH_DATABASE_URL; default SQLite in the data directory)')
    .option('--public-url <url>', 'URL machines use to reach this controller (PLINTH_PUBLIC_URL)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace (PLINTH_LOG_LEVEL)')
    .option('--tftp [host:port]', 'also serve the iPXE binaries over TFTP (PLINTH_TFTP_ENABLED; default 0.0.0.0:69)')
    .option('--dhcp <mode>', 'off|proxy|full: run dnsmasq as a proxy DHCP or the DHCP server of the provisioning network (PLINTH_DHCP_MODE)')
    .option('--dhcp-interface <if>', 'interface DHCP is served on (PLINTH_DHCP_INTERFACE)')
    .option('--dhcp-range <first,last>', 'full mode: addresses handed out, first,last[,netmask] (PLINTH_DHCP_RANGE)')
    .action(async (opts: ServeOptions) => {
      const flags: Record<string, unknown> = {};
      if (opts.listen) flags.listen = opts.listen;
      if (opts.dataDir) flags.dataDir = opts.dataDir;
      if (opts.databaseUrl) flags.databaseUrl = opts.databaseUrl;
      if (opts.publicUrl) flags.publicUrl = opts.publicUrl;
      if (opts.logLevel) flags.logLevel = opts.logLevel;
      const dhcp = { mode: opts.dhcp, interface: opts.dhcpInterface, range: opts.dhcpRange };
      if (Object.values(dhcp).some((v) => v !== undefined)) flags.dhcp = Object.fromEntries(Object.entries(dhcp).filter(([, v]) => v !== undefined));
      if (opts.tftp) flags.tftp = { enabled: true, ...(typeof opts.tftp === 'string' ? { listen: opts.tftp } : {}) };
      // The controller and its dependencies load when it runs, not for every `plinth` command.
      const [{ loadConfig }, { createController }] = await Promise.all([import('../config/load.js'), import('../controller.js')]);
      const config = loadConfig({
        file: opts.config ?? ctx.env.PLINTH_CONFIG ?? 'plinth.yaml',
        fileRequired: Boolean(opts.config ?? ctx.env.PLINTH_CONFIG),
        env: ctx.env,
        flags,
      });
      const controller = await createController(config);
      await controller.listen();
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          controller.log.info({ signal }, 'shutting down: finishing in-flight requests');
          controller.close().then(resolve, (e: unknown) => {
            controller.log.error({ err: e }, 'shutdown failed');
            resolve();
          });
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
};
