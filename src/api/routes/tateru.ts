import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { App, AppServices } from '../context.js';
import { operatorActor } from '../context.js';
import { PlinthError } from '../../core/errors.js';
import type { Store } from '../../store/database.js';
import { verifyRunToken, type RunPrincipal } from '../../runs/run-tokens.js';
import { controllerBaseUrl } from '../../boot/base-url.js';
import type { AgentSession } from '../../boot/agent-session.js';
import type { TateruMachineService } from '../../deploy/tateru.js';
import { ErrorResponse } from '../schemas.js';
import {
  TateruBootInstallerAnswerSchema,
  TateruBootInstallerRequestSchema,
  TateruCallbackAnswerSchema,
  TateruCallbackRequestSchema,
  TateruListQuerySchema,
  TateruMachineParamsSchema,
  TateruMachineSchema,
} from '../../protocol/tateru.js';

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse };
const bearer = (req: FastifyRequest) => /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? null;

export interface TateruApiDeps {
  store: Store;
  tateru: TateruMachineService;
  session: Pick<AgentSession, 'sshReady'>;
  ticketKey: Buffer;
}

/**
 * Tateru's Machine Service API (protocol/tateru.ts) at `/v1/…`, with the API's tokens (Bearer,
 * or the password of HTTP Basic, which python-requests sends from ~/.netrc). The installer's
 * callback authenticates with its run ticket, like the agent's API. Routes only translate.
 */
export function tateruRoutes(deps: TateruApiDeps) {
  return async (app: App, s: AppServices): Promise<void> => {
    const managedBy = (req: FastifyRequest) =>
      controllerBaseUrl(s.config.apiUrl, { protocol: req.protocol, localAddress: req.socket.localAddress, localPort: req.socket.localPort }, s.config.listen);

    app.get(
      '/v1/machines',
      {
        schema: {
          tags: ['tateru'],
          summary: "Tateru: machines whose name, serial number, asset tag or UUID is `alias` (a list; every machine without alias)",
          querystring: TateruListQuerySchema,
          response: { 200: Type.Array(TateruMachineSchema), ...errors },
        },
      },
      async (req) => {
        const base = managedBy(req);
        return Promise.all((await deps.tateru.find(req.query.alias)).map((m) => deps.tateru.present(m, base)));
      },
    );

    app.get(
      '/v1/machines/:uuid',
      {
        schema: {
          tags: ['tateru'],
          summary: 'Tateru: one machine by its UUID (system UUID, else Plinth id), with the held installer\'s address',
          params: TateruMachineParamsSchema,
          response: { 200: TateruMachineSchema, ...errors },
        },
      },
      async (req) => deps.tateru.present(await deps.tateru.get(req.params.uuid), managedBy(req)),
    );

    app.post(
      '/v1/machines/:uuid/boot-installer',
      {
        schema: {
          tags: ['tateru'],
          summary: 'Tateru: boot the machine into the installer letting `ssh_pub_key` in (the same `nonce` again: the same operation; another operation in flight: 409)',
          params: TateruMachineParamsSchema,
          body: TateruBootInstallerRequestSchema,
          response: { 200: TateruBootInstallerAnswerSchema, ...errors },
        },
      },
      async (req) => {
        const r = await deps.tateru.bootInstaller(req.params.uuid, req.body.ssh_pub_key, req.body.nonce, operatorActor(req.principal));
        req.log.info({ machine: r.name, run: r.run, state: r.state, by: req.principal?.name }, 'boot-installer (Tateru API)');
        return r;
      },
    );

    app.post(
      '/v1/machines/:uuid/installer-callback',
      {
        config: { role: 'public' },
        // The run ticket is checked before the body is read, as on the agent's API.
        onRequest: async (req) => {
          const token = bearer(req);
          const principal = token ? await verifyRunToken(deps.store.db, deps.ticketKey, token) : null;
          if (!principal) throw new PlinthError('unauthorized', 'run token is unknown, superseded, or its run has ended');
          req.run = principal;
        },
        schema: {
          tags: ['tateru'],
          summary: "Tateru: the installer's SSH server is up (its port; host keys and addresses optional), made with its run ticket; answers the key to let in",
          security: [],
          params: TateruMachineParamsSchema,
          body: TateruCallbackRequestSchema,
          response: { 200: TateruCallbackAnswerSchema, ...errors },
        },
      },
      async (req) => {
        const p = req.run as RunPrincipal;
        const answer = await deps.tateru.callbackKey(req.params.uuid, p);
        await deps.session.sshReady(p, { port: req.body.sshPorts.installer, hostKeys: req.body.hostKeys ?? [], addresses: req.body.addresses ?? [] }, req.ip ?? null);
        return answer;
      },
    );
  };
}
