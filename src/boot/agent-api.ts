import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Store } from '../store/database.js';
import { PlinthError } from '../core/errors.js';
import { verifyRunToken, type RunPrincipal } from '../runs/run-tokens.js';
import { ErrorResponse } from '../api/schemas.js';
import type { ImageStore } from '../images/store.js';
import type { SendFile } from '../api/send-file.js';
import { FactsSchema } from '../protocol/facts.js';
import {
  BootLocalAnswerSchema,
  BootLocalRequestSchema,
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
  StepParamsSchema,
  StepReportAnswerSchema,
  StepReportSchema,
  type FailReport,
  type Heartbeat,
  type HelloRequest,
  type InstalledReport,
  type LogBatch,
  type StepReport,
} from '../protocol/agent.js';
import type { Facts } from '../core/facts.js';
import type { AgentSession } from './agent-session.js';
import type { DeployRuns } from './deploy-runs.js';

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
}

const errors = { 400: ErrorResponse, 401: ErrorResponse, 409: ErrorResponse, 413: ErrorResponse };
const bearer = (req: FastifyRequest) => /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? null;

/**
 * The API the installer's agent speaks (src/protocol/agent.ts), authenticated with its run
 * ticket (never an API token): hello, facts, log lines, heartbeats, failure reports. The
 * first call with a valid ticket claims the run; from then on only that ticket works. The
 * token is checked when the request arrives (onRequest), before its body is read: an
 * unauthenticated client cannot make the controller parse megabytes of JSON. Each route
 * only translates: principal and body in, the session's answer out (agent-session.ts).
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

    app.post(
      '/agent/v1/hello',
      {
        ...route,
        schema: {
          tags: ['agent'],
          summary: 'The agent started: the run moves to its *-wait state',
          security: [],
          body: HelloRequestSchema,
          response: { 200: HelloResponseSchema, ...errors },
        },
      },
      async (req) => session.hello(req.run!, req.body as HelloRequest),
    );

    app.post(
      '/agent/v1/facts',
      {
        ...route,
        bodyLimit: 16 * 1024 * 1024,
        schema: { tags: ['agent'], summary: 'Inspection facts; ends an inspection run', security: [], body: FactsSchema, response: { 200: NextAnswerSchema, ...errors } },
      },
      async (req) => session.facts(req.run!, req.body as Facts),
    );

    app.post(
      '/agent/v1/log',
      {
        ...route,
        schema: { tags: ['agent'], summary: 'Installer log lines, stored with the run', security: [], body: LogBatchSchema, response: { 200: LogAnswerSchema, ...errors } },
      },
      async (req) => session.log(req.run!, (req.body as LogBatch).lines),
    );

    app.post(
      '/agent/v1/heartbeat',
      {
        ...route,
        schema: {
          tags: ['agent'],
          summary: 'The agent is alive; the answer says what to do next',
          security: [],
          body: HeartbeatSchema,
          response: { 200: HeartbeatAnswerSchema, ...errors },
        },
      },
      async (req) => session.heartbeat(req.run!, req.body as Heartbeat),
    );

    app.post(
      '/agent/v1/steps/:name',
      {
        ...route,
        schema: {
          tags: ['agent'],
          summary: 'A deploy or wipe step started, succeeded or failed',
          security: [],
          params: StepParamsSchema,
          body: StepReportSchema,
          response: { 200: StepReportAnswerSchema, ...errors },
        },
      },
      async (req) => session.step(req.run!, (req.params as { name: string }).name, req.body as StepReport),
    );

    app.post(
      '/agent/v1/boot-local',
      {
        ...route,
        schema: {
          tags: ['agent'],
          summary: 'The image is written: boot the installed OS from now on',
          security: [],
          body: BootLocalRequestSchema,
          response: { 200: BootLocalAnswerSchema, ...errors },
        },
        preValidation: async (req) => {
          req.body ??= {};
        },
      },
      async (req) => session.bootLocal(req.run!),
    );

    app.get(
      '/agent/v1/images/:name',
      {
        ...route,
        schema: {
          tags: ['agent'],
          summary: "The deploy run's image (Range and ETag supported, for resuming)",
          security: [],
          params: Type.Object({ name: Type.String({ maxLength: 100 }) }, { additionalProperties: false }),
        },
      },
      async (req, reply) => {
        const image = await session.image(req.run!, (req.params as { name: string }).name, req.headers.range);
        return deps.sendFile(reply, deps.images.path(image));
      },
    );

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

    app.post(
      '/agent/v1/fail',
      {
        ...route,
        schema: {
          tags: ['agent'],
          summary: 'The agent gives up: the machine goes to its *-failed state with this error',
          security: [],
          body: FailReportSchema,
          response: { 200: HeartbeatAnswerSchema, ...errors },
        },
      },
      async (req) => session.fail(req.run!, req.body as FailReport),
    );
  };
}
