import type { FastifyRequest } from 'fastify';
import type { App, AppServices } from '../context.js';
import type { ControllerMetrics } from '../../metrics/controller-metrics.js';

/**
 * The boot endpoints machines fetch, each named as the stage of a boot it serves (the names of
 * the boot trace where there is one). Requests to other routes are not boot requests.
 */
const BOOT_STAGES: Record<string, (req: FastifyRequest) => string> = {
  '/boot.ipxe': () => 'chain-script',
  '/boot/machine.ipxe': () => 'machine-script',
  '/boot/:file': () => 'ipxe-binary',
  '/boot/installer.iso': () => 'installer-iso',
  '/boot/agent-ticket': () => 'agent-ticket',
  '/boot/installer/:file': (req) => (/\/vmlinuz(\?|$)/.test(req.url) ? 'kernel' : 'initrd'),
  '/boot/artifacts/:token/:kind/:name': () => 'artifact',
  '/boot/files/:name': () => 'boot-file',
};

/**
 * `GET /metrics` (Prometheus text format) and the hook that counts boot requests. Registered
 * before the boot routes, so its hook sees them. A reader token is needed unless
 * `metrics.public` is set.
 */
export function metricsRoutes(metrics: ControllerMetrics) {
  return async (app: App, s: AppServices): Promise<void> => {
    app.addHook('onResponse', async (req, reply) => {
      const stage = BOOT_STAGES[req.routeOptions.url ?? ''];
      if (stage) metrics.bootRequest(stage(req), reply.statusCode);
    });
    app.get(
      '/metrics',
      {
        config: { role: s.config.metrics.public ? 'public' : 'reader' },
        schema: { tags: ['meta'], summary: 'Metrics in the Prometheus text format (docs/metrics.md)', ...(s.config.metrics.public ? { security: [] } : {}) },
      },
      async (_req, reply) => {
        const { contentType, body } = await metrics.text();
        return reply.type(contentType).send(body);
      },
    );
  };
}
