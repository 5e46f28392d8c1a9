import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static, type TSchema } from 'typebox';
import type { Store } from '../../store/database.js';
import { PlinthError } from '../../core/errors.js';
import { verifyRunToken, type RunPrincipal } from '../../runs/run-tokens.js';
import { ErrorResponse } from '../schemas.js';
import type { ImageStore } from '../../images/store.js';
import type { SendFile } from '../send-file.js';
import { FactsSchema } from '../../protocol/facts.js';
import {
  BootLocalAnswerSchema,
  BootLocalRequestSchema,
  ConsoleImagesAnswerSchema,
  ConsoleInstallAnswerSchema,
  ConsoleInstallSchema,
  ConsolePowerSchema,
  FailReportSchema,
  HeartbeatAnswerSchema,
  HeartbeatSchema,
  HelloRequestSchema,
  HelloResponseSchema,
  InstalledAnswerSchema,
  InstalledReportSchema,
  LogAnswerSchema,
  LogBatchSchema,
  NextAnswerSchema,
  SshAnswerSchema,
  SshReportSchema,
  StepParamsSchema,
  ScriptParamsSchema,
  ScriptResultSchema,
  StepReportAnswerSchema,
  StepReportSchema,
  type InstalledReport,
} from '../../protocol/agent.js';
import type { Facts } from '../../core/facts.js';
import type { AgentSession } from '../../boot/agent-session.js';
import type { DeployRuns } from '../../deploy/deploy-runs.js';
import type { ConsoleInstalls } from '../../deploy/console.js';

declare module 'fastify' {
  interface FastifyRequest {
    run: RunPrincipal | null;
  }
}

export interface AgentApiDeps {
  store: Store;
  session: AgentSession;
  /** Finds the deploy a callback secret belongs to. */
  deployRuns: Pick<DeployRuns, 'runByCallback'>;
  images: ImageStore;
  sendFile: SendFile;
  /** Verifies run tickets (see runs/run-tokens.ts). */
  ticketKey: Buffer;
  /** The installer's console menu: what it may install, and the install (docs/console.md). */
  console: Pick<ConsoleInstalls, 'images' | 'install' | 'power'>;
}

const errors = { 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse, 409: ErrorResponse, 413: ErrorResponse, 422: ErrorResponse };
const bearer = (req: FastifyRequest) => /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? null;

/**
 * The API the installer's agent speaks (src/protocol/agent.ts), authenticated with its run
 * ticket (never an API token): hello, facts, log lines, heartbeats, failure reports. The
 * first call with a valid ticket claims the run; from then on only that ticket works. The
 * token is checked when the request arrives (onRequest), before its body is read: an
 * unauthenticated client cannot make the controller parse megabytes of JSON. Each route
 * only translates: principal and body in, the session's answer out (boot/agent-session.ts).
 */
export function agentRoutes(deps: AgentApiDeps) {
  const { session } = deps;
  return async (app: FastifyInstance): Promise<void> => {
    app.decorateRequest('run', null);
    const authenticate = async (req: FastifyRequest) => {
      const token = bearer(req);
      const principal = token ? await verifyRunToken(deps.store.db, deps.ticketKey, token) : null;
      if (!principal) throw new PlinthError('unauthorized', 'run token is unknown, superseded, or its run has ended');
      req.run = principal;
    };
    const route = { config: { role: 'public' as const }, onRequest: authenticate };

    /**
     * A POST the agent makes with its run ticket: authenticated before the body is read, the
     * body checked against `body`, the answer serialised through `answer` (protocol/agent.ts).
     */
    const report = <B extends TSchema>(
      path: string,
      summary: string,
      body: B,
      answer: TSchema,
      handle: (p: RunPrincipal, body: Static<B>, req: FastifyRequest) => Promise<unknown>,
      extra: { bodyLimit?: number; params?: TSchema; preValidation?: (req: FastifyRequest) => Promise<void> } = {},
    ) =>
      app.post(
        path,
        {
          ...route,
          ...(extra.bodyLimit ? { bodyLimit: extra.bodyLimit } : {}),
          ...(extra.preValidation ? { preValidation: extra.preValidation } : {}),
          schema: { tags: ['agent'], summary, security: [], ...(extra.params ? { params: extra.params } : {}), body, response: { 200: answer, ...errors } },
        },
        async (req) => handle(req.run!, req.body as Static<B>, req),
      );

    report('/agent/v1/hello', 'The agent started: the run moves to its *-wait state', HelloRequestSchema, HelloResponseSchema, (p, body) => session.hello(p, body));
    report('/agent/v1/facts', 'Inspection facts; ends an inspection run', FactsSchema, NextAnswerSchema, (p, facts) => session.facts(p, facts as Facts), { bodyLimit: 16 * 1024 * 1024 });
    report('/agent/v1/log', 'Installer log lines, stored with the run', LogBatchSchema, LogAnswerSchema, (p, body) => session.log(p, body.lines));
    report('/agent/v1/heartbeat', 'The agent is alive; the answer says what to do next', HeartbeatSchema, HeartbeatAnswerSchema, (p, body) => session.heartbeat(p, body));
    report('/agent/v1/steps/:name', 'A deploy or wipe step started, succeeded or failed', StepReportSchema, StepReportAnswerSchema, (p, body, req) => session.step(p, (req.params as Static<typeof StepParamsSchema>).name, body), {
      params: StepParamsSchema,
    });
    report('/agent/v1/scripts/:name', "An operator's script ran (inspect runs, before the facts): exit code, output, files", ScriptResultSchema, Type.Object({}), (p, body, req) => session.script(p, (req.params as Static<typeof ScriptParamsSchema>).name, body), {
      params: ScriptParamsSchema,
      bodyLimit: 16 * 1024 * 1024,
    });
    report('/agent/v1/boot-local', 'The image is written: boot the installed OS from now on', BootLocalRequestSchema, BootLocalAnswerSchema, (p) => session.bootLocal(p), {
      preValidation: async (req) => {
        req.body ??= {};
      },
    });
    report('/agent/v1/ssh', "The installer's SSH server is up: its port and host keys (installer and rescue runs)", SshReportSchema, SshAnswerSchema, (p, body, req) => session.sshReady(p, body, req.ip ?? null));
    report('/agent/v1/fail', 'The agent gives up: the machine goes to its *-failed state with this error', FailReportSchema, HeartbeatAnswerSchema, (p, body) => session.fail(p, body));

    app.get(
      '/agent/v1/console/images',
      { ...route, schema: { tags: ['agent'], summary: "The images a console hold may install (the installer's console menu)", security: [], response: { 200: ConsoleImagesAnswerSchema, ...errors } } },
      async (req) => deps.console.images(req.run!),
    );
    report('/agent/v1/console/install', "The console menu's choices: starts a deploy run of this machine and answers its ticket", ConsoleInstallSchema, ConsoleInstallAnswerSchema, (p, body) => deps.console.install(p, body));
    report('/agent/v1/console/power', 'Reboot or power off chosen on the console: recorded on the machine before the installer does it', ConsolePowerSchema, Type.Object({}), (p, body) => deps.console.power(p, body.action));

    /** A file of the deploy run's image, sent as it is stored (Range and ETag from the file sender). */
    const imageFile = (url: string, summary: string, path: (run: RunPrincipal, name: string, range: string | undefined) => Promise<string>) =>
      app.get(
        url,
        {
          ...route,
          schema: { tags: ['agent'], summary, security: [], params: Type.Object({ name: Type.String({ maxLength: 100 }) }, { additionalProperties: false }) },
        },
        async (req, reply) => deps.sendFile(reply, await path(req.run!, (req.params as { name: string }).name, req.headers.range)),
      );
    imageFile('/agent/v1/images/:name', "The deploy run's image (Range and ETag supported, for resuming)", async (run, name, range) => deps.images.path(await session.image(run, name, range)));
    imageFile('/agent/v1/images/:name/chunks', "The deploy run's image's chunk index (JSON; its SHA-256 is in the run parameters)", (run, name) => session.imageIndex(run, name));

    app.post(
      '/agent/v1/installed',
      {
        config: { role: 'public' },
        // The callback secret is checked before the body is read, like the run token above.
        onRequest: async (req) => {
          const token = bearer(req);
          if (!token || !(await deps.deployRuns.runByCallback(token))) throw new PlinthError('unauthorized', 'callback token is unknown, or its deploy has ended');
        },
        schema: {
          tags: ['agent'],
          summary: "The installed OS (or an installer's last step) reports in with its deploy's callback token",
          security: [],
          body: InstalledReportSchema,
          response: { 200: InstalledAnswerSchema, ...errors },
        },
      },
      async (req) => {
        const token = bearer(req);
        const found = token ? await deps.deployRuns.runByCallback(token) : null;
        if (!found) throw new PlinthError('unauthorized', 'callback token is unknown, or its deploy has ended');
        return session.installed(found, req.body as InstalledReport, req.ip ?? null);
      },
    );
  };
}
