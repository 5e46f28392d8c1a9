import type { FastifyRequest } from 'fastify';
import type { App } from '../context.js';
import { PlinthError } from '../../core/errors.js';
import { ErrorResponse } from '../schemas.js';
import { HostDesiredAnswerSchema, HostVersionAnswerSchema, HostVersionReportSchema } from '../../protocol/host.js';
import type { HostPrincipal, HostVersions } from '../../trees/host-versions.js';

declare module 'fastify' {
  interface FastifyRequest {
    installedHost: HostPrincipal | null;
  }
}

const errors = { 400: ErrorResponse, 401: ErrorResponse, 409: ErrorResponse, 413: ErrorResponse };
const bearer = (req: FastifyRequest) => /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? null;

/**
 * The calls of hosts installed from a tree (protocol/host.ts), authenticated with the host's
 * credential (never an API token or a run ticket), checked when the request arrives, before
 * its body is read. Routes only translate; trees/host-versions.ts decides.
 */
export function hostRoutes(hosts: HostVersions) {
  return async (app: App): Promise<void> => {
    app.decorateRequest('installedHost', null);
    const authenticate = async (req: FastifyRequest) => {
      const token = bearer(req);
      const principal = token ? await hosts.authenticate(token) : null;
      if (!principal) throw new PlinthError('unauthorized', 'host credential is unknown, or its machine is no longer deployed by the deploy that issued it');
      req.installedHost = principal;
    };
    const route = { config: { role: 'public' as const }, onRequest: authenticate, bodyLimit: 64 * 1024 };

    app.post(
      '/agent/v1/host/version',
      {
        ...route,
        schema: {
          tags: ['agent'],
          summary: 'A host installed from a tree reports the role and version it runs (after every edeploy upgrade), with its host credential',
          security: [],
          body: HostVersionReportSchema,
          response: { 200: HostVersionAnswerSchema, ...errors },
        },
      },
      async (req) => hosts.report(req.installedHost!, req.body),
    );

    app.get(
      '/agent/v1/host/desired',
      {
        ...route,
        schema: {
          tags: ['agent'],
          summary: 'The version a rolling upgrade wants this host at (edeploy poll), with its host credential',
          security: [],
          response: { 200: HostDesiredAnswerSchema, ...errors },
        },
      },
      async (req) => hosts.desired(req.installedHost!),
    );
  };
}
