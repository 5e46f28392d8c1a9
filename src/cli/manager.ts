import type { Command } from 'commander';
import type { CommandRegistrar } from './context.js';
import { positiveInt } from './context.js';
import { UsageError } from './errors.js';

/** `plinth manager`: runs providers at a remote site and dials out to the controller. */
export const registerManager: CommandRegistrar = (program, ctx) => {
  program
    .command('manager')
    .description('run providers at a remote site, dialling out to the controller (no inbound access to the BMC network needed)')
    .requiredOption('--controller <url>', 'controller URL')
    .option('--token <token>', 'an admin token (or PLINTH_TOKEN): the manager receives appliance credentials')
    .requiredOption('--site <name>', 'the site whose appliances this manager runs')
    .option('--parallel <n>', 'jobs at once', '32')
    .option('--provider-timeout <duration>', 'time limit of one provider call', '60s')
    .option('--power-verify-timeout <duration>', 'after a power action, how long to wait for the system to show the target state', '60s')
    .option('--log-level <level>', 'log level', 'info')
    .option('--ca-bundle <file>', "PEM CA certificates to trust for an HTTPS controller, besides the system's (PLINTH_CA_BUNDLE)")
    .option('--cache-dir <dir>', "keep a site cache here: images and installer files for the site's machines, fetched from the controller once")
    .option('--cache-size <size>', 'size limit of the site cache (least recently used files are evicted)', '20G')
    .option('--listen <host:port>', "where the site cache serves the site's machines", '0.0.0.0:7709')
    .option('--advertise-url <url>', 'the URL machines reach the site cache at (required when --listen is a wildcard address)')
    // NOTE: the program's own --ca-bundle takes the flag wherever it is written; read both.
    .action(async (o: { controller: string; token?: string; site: string; parallel: string; providerTimeout: string; powerVerifyTimeout: string; logLevel: string; caBundle?: string; cacheDir?: string; cacheSize: string; listen: string; advertiseUrl?: string }, cmd: Command) => {
      o.caBundle ??= cmd.optsWithGlobals<{ caBundle?: string }>().caBundle;
      // Providers and their dependencies load when the manager runs, not for every `plinth` command.
      const [{ caBundleFrom }, { Manager }, { defaultRegistry }, { createLogger }, { parseDuration }, { parseSize }, { parseListen }] = await Promise.all([
        import('./connect.js'),
        import('../manager/manager.js'),
        import('../controller.js'),
        import('../core/logger.js'),
        import('../core/clock.js'),
        import('../core/size.js'),
        import('../config/load.js'),
      ]);
      const token = o.token ?? ctx.env.PLINTH_TOKEN;
      if (!token) throw new UsageError('--token or PLINTH_TOKEN is required');
      const ca = o.caBundle ? caBundleFrom(o.caBundle, '--ca-bundle') : caBundleFrom(ctx.env.PLINTH_CA_BUNDLE, 'PLINTH_CA_BUNDLE');
      const duration = (value: string, flag: string): number => {
        try {
          return parseDuration(value);
        } catch (e) {
          throw new UsageError(`${flag}: ${(e as Error).message}`);
        }
      };
      const timeoutMs = duration(o.providerTimeout, '--provider-timeout');
      const powerVerifyTimeoutMs = duration(o.powerVerifyTimeout, '--power-verify-timeout');
      let cache;
      if (o.cacheDir) {
        const limitBytes = parseSize(o.cacheSize);
        if (!limitBytes) throw new UsageError(`--cache-size: '${o.cacheSize}' is not a size (20G, 500M)`);
        let listen;
        try {
          listen = parseListen(o.listen);
        } catch {
          throw new UsageError(`--listen: '${o.listen}' is not host:port`);
        }
        if (o.advertiseUrl !== undefined && !/^https?:\/\/[^/?#\s]+\/?$/.test(o.advertiseUrl)) throw new UsageError(`--advertise-url: '${o.advertiseUrl}' is not http(s)://host[:port]`);
        if (o.advertiseUrl === undefined && (listen.host === '0.0.0.0' || listen.host === '::' || listen.host === '')) {
          throw new UsageError('--advertise-url is required when --listen is a wildcard address: machines must be told one address');
        }
        cache = { dir: o.cacheDir, limitBytes, listen, ...(o.advertiseUrl !== undefined ? { advertiseUrl: o.advertiseUrl } : {}) };
      } else if (o.advertiseUrl !== undefined) {
        throw new UsageError('--advertise-url needs --cache-dir');
      }
      const m = new Manager({
        url: o.controller,
        token,
        site: o.site,
        parallel: positiveInt(o.parallel, '--parallel'),
        registry: defaultRegistry(),
        log: createLogger(o.logLevel),
        version: '0.1.0',
        providerTimeoutMs: timeoutMs,
        powerVerifyTimeoutMs,
        ca,
        ...(cache ? { cache } : {}),
      });
      process.once('SIGTERM', () => m.stop());
      process.once('SIGINT', () => m.stop());
      await m.run();
    });
};
