import Fastify, { type FastifyRequest, type FastifyServerOptions } from 'fastify';
import fastifyStatic from '@fastify/static';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv, type Options as AjvOptions } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { App, AppServices } from './context.js';
import { registerAuth } from './auth.js';
import { handleError } from './errors.js';
import { PlinthError } from '../core/errors.js';
import { redactSecrets } from '../core/redact.js';
import { machineRoutes } from './routes/machines.js';
import { runRoutes } from './routes/runs.js';
import { eventRoutes } from './routes/events.js';
import { webhookRoutes } from './routes/webhooks.js';
import { tokenRoutes } from './routes/tokens.js';
import { metaRoutes } from './routes/meta.js';
import { uiRoutes } from './routes/ui.js';

export type { App };
export type RouteRegistrar = (app: App, services: AppServices) => void | Promise<void>;

// ajv-formats is CommonJS; its default export arrives wrapped under ESM.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

function makeAjv(options: AjvOptions): Ajv {
  const ajv = new Ajv({ useDefaults: true, removeAdditional: false, allErrors: false, strict: false, ...options });
  addFormats(ajv);
  return ajv;
}

/** What the request log says about a request (Fastify's default fields), with secrets in the URL redacted. */
function requestForLog(req: FastifyRequest) {
  return {
    method: req.method,
    url: redactSecrets(req.url),
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}

export interface BuildAppOptions {
  logger: FastifyServerOptions['loggerInstance'] | false;
  /** More route groups (boot service, agent API…) registered by later components. */
  extraRoutes?: RouteRegistrar[];
  /** Certificate and key (PEM) to serve HTTPS; absent: plain HTTP. */
  https?: { cert: string; key: string } | null;
}

/**
 * The HTTP application: Fastify with TypeBox schemas that validate requests and generate
 * the OpenAPI document. Bodies are validated strictly (no type coercion, unknown fields
 * rejected); query strings and path parameters are coerced from text.
 */
export async function buildApp(services: AppServices, options: BuildAppOptions): Promise<App> {
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: services.config.bodyLimit,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true },
    ...(options.https ? { https: options.https } : {}),
    // Boot and artifact URLs carry run tickets and callback secrets: request log lines show them redacted.
    childLoggerFactory: (logger, bindings, opts) => logger.child(bindings, { ...opts, serializers: { ...opts.serializers, req: requestForLog } }),
  }).withTypeProvider<TypeBoxTypeProvider>();

  const bodyAjv = makeAjv({ coerceTypes: false });
  const textAjv = makeAjv({ coerceTypes: 'array' });
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? bodyAjv : textAjv).compile(schema as object),
  );
  app.setErrorHandler(handleError);
  app.setNotFoundHandler(async (req) => {
    throw new PlinthError('not_found', `no route ${req.method} ${req.url.split('?')[0]}`);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Plinth API',
        version: '1',
        description: 'Provisioning for bare-metal servers and virtual machines. Errors: { "error": { "code", "message", "details" } }.',
      },
      // The API token as a bearer token, or as the password of HTTP Basic (any user name; python-requests' ~/.netrc).
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, basic: { type: 'http', scheme: 'basic' } } },
      security: [{ bearer: [] }, { basic: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/api/v1/docs', uiConfig: { deepLinking: true } });

  // reply.sendFile for every route that sends files (boot files, images, the web UI): Content-Length,
  // Range, ETag / If-None-Match, content type from the name, streamed from disk.
  await app.register(fastifyStatic, { root: '/', serve: false, acceptRanges: true, etag: true, lastModified: true, cacheControl: false });
  registerAuth(app, services);
  await metaRoutes(app, services);
  await machineRoutes(app, services);
  await runRoutes(app, services);
  await eventRoutes(app, services);
  await webhookRoutes(app, services);
  await tokenRoutes(app, services);
  for (const r of options.extraRoutes ?? []) await r(app, services);
  await uiRoutes(app);
  app.get('/api/v1/openapi.json', { schema: { hide: true }, config: { role: 'public' } }, async () => app.swagger());
  return app;
}
