import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Store } from '../../store/database.js';
import type { Clock } from '../../core/clock.js';
import { iso } from '../../core/clock.js';
import type { Facts } from '../../core/facts.js';
import { PlinthError } from '../../core/errors.js';
import type { Config } from '../../config/schema.js';
import type { LifecycleEngine } from '../../lifecycle/engine.js';
import type { InspectionService } from '../../inspection/service.js';
import { requireMachine } from '../../inventory/machine-rows.js';
import { appendRunLogWithin, getRun, updateStep } from '../../runs/runs.js';
import { redactSecrets } from '../../core/redact.js';
import { verifyRunToken, type RunPrincipal } from '../../runs/run-tokens.js';
import { currentAttempt, recordStage } from '../../runs/trace.js';
import { FactsSchema } from '../../boot/facts-schema.js';
import { ErrorResponse } from '../schemas.js';
import type { DeployService } from '../../deploy/service.js';
import type { ImageStore } from '../../images/store.js';
import type { SendFile } from '../send-file.js';

declare module 'fastify' {
  interface FastifyRequest {
    run: RunPrincipal | null;
  }
}

export interface AgentApiDeps {
  store: Store;
  clock: Clock;
  engine: LifecycleEngine;
  inspection: InspectionService;
  deploy: DeployService;
  images: ImageStore;
  config: Pick<Config, 'afterInspection' | 'agent'>;
  sendFile: SendFile;
  /** Verifies run tickets (see runs/run-tokens.ts). */
  ticketKey: Buffer;
}

/** What the agent should do once a step is done. */
export type AgentNext = 'poweroff' | 'reboot' | 'wait';

const HEARTBEAT_SECONDS = 15;
const errors = { 400: ErrorResponse, 401: ErrorResponse, 409: ErrorResponse, 413: ErrorResponse };

/**
 * The API the installer's agent speaks, authenticated with its run ticket (never an API
 * token): hello, facts, log lines, heartbeats, failure reports. The first call with a valid
 * ticket claims the run; from then on only that ticket works. The token is checked when the
 * request arrives (onRequest), before its body is read: an unauthenticated client cannot make
 * the controller parse megabytes of JSON.
 */
export function agentRoutes(deps: AgentApiDeps) {
  return async (app: FastifyInstance): Promise<void> => {
    app.decorateRequest('run', null);
    const authenticate = async (req: FastifyRequest) => {
      const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      const principal = m ? await verifyRunToken(deps.store.db, deps.ticketKey, m[1]!) : null;
      if (!principal) throw new PlinthError('unauthorized', 'run token is unknown, superseded, or its run has ended');
      req.run = principal;
    };
    const at = () => iso(deps.clock.now());
    const trace = async (p: RunPrincipal, stage: string, detail: Record<string, unknown> | null = null) => {
      const attemptId = await currentAttempt(deps.store.db, p.machineId, p.runId);
      await recordStage(deps.store.db, { machineId: p.machineId, attemptId, runId: p.runId, at: at(), stage, detail });
    };
    const route = { config: { role: 'public' as const }, onRequest: authenticate };
    /** Stores installer output within the run's budget (agent.logLimit), secrets redacted. */
    const storeLog = async (runId: string, lines: { at: string; stream: string; line: string }[]) => {
      const redacted = lines.map((l) => ({ ...l, line: redactSecrets(l.line) }));
      if (!(await appendRunLogWithin(deps.store.db, runId, redacted, deps.config.agent.logLimit))) {
        throw new PlinthError('payload_too_large', `run ${runId} has used its installer log budget (agent.logLimit, ${deps.config.agent.logLimit} bytes)`, { details: { field: 'lines', limit: deps.config.agent.logLimit } });
      }
    };

    app.post(
      '/agent/v1/hello',
      {
        ...route,
        schema: {
          tags: ['agent'],
          summary: 'The agent started: the run moves to its *-wait state',
          security: [],
          body: Type.Object(
            { agentVersion: Type.String({ maxLength: 64 }), bootMode: Type.Optional(Type.String({ enum: ['uefi', 'bios'] })) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ machine: Type.Object({ id: Type.String(), name: Type.String() }), run: Type.Object({ id: Type.String(), kind: Type.String(), params: Type.Unknown() }), heartbeatSeconds: Type.Integer() }), ...errors },
        },
      },
      async (req) => {
        const p = req.run!;
        const now = at();
        await trace(p, 'agent-hello', { agentVersion: (req.body as { agentVersion: string }).agentVersion });
        const m = await requireMachine(deps.store.db, deps.store.dialect, p.machineId);
        const before = await getRun(deps.store.db, p.runId);
        if (['inspecting', 'deploying', 'wiping'].includes(m.state)) {
          const deadlineMs = deps.deploy.deadlineAfterHello(before);
          await deps.engine.act(p.machineId, 'installer-started', {
            actor: { kind: 'agent', name: `run:${p.runId}` },
            runId: p.runId,
            reason: 'agent hello',
            ...(deadlineMs !== undefined ? { deadlineMs } : {}),
          });
        }
        await updateStep(deps.store.db, p.runId, 'power-on', 'succeeded', now);
        await updateStep(deps.store.db, p.runId, 'boot-installer', 'succeeded', now);
        await updateStep(deps.store.db, p.runId, 'agent-hello', 'succeeded', now);
        const run = await getRun(deps.store.db, p.runId);
        return { machine: { id: m.id, name: m.name }, run: { id: run.id, kind: run.kind, params: await deps.deploy.agentParams(run) }, heartbeatSeconds: HEARTBEAT_SECONDS };
      },
    );

    app.post(
      '/agent/v1/facts',
      {
        ...route,
        bodyLimit: 16 * 1024 * 1024,
        schema: {
          tags: ['agent'],
          summary: 'Inspection facts; ends an inspection run',
          security: [],
          body: FactsSchema,
          response: { 200: Type.Object({ next: Type.String({ enum: ['poweroff', 'reboot', 'wait'] }) }), ...errors },
        },
      },
      async (req) => {
        const p = req.run!;
        if (p.kind !== 'inspect') throw new PlinthError('conflict', `run ${p.runId} is a ${p.kind} run; facts end inspect runs only`);
        const m = await requireMachine(deps.store.db, deps.store.dialect, p.machineId);
        if (m.state === 'inspecting') {
          await deps.engine.act(p.machineId, 'installer-started', { actor: { kind: 'agent', name: `run:${p.runId}` }, runId: p.runId, reason: 'facts before hello' });
        }
        const facts = req.body as Facts;
        await deps.inspection.complete(p.machineId, p.runId, facts, at());
        await trace(p, 'facts', { disks: facts.disks.length, nics: facts.nics.length, hw: facts.hw.length });
        return { next: deps.config.afterInspection as AgentNext };
      },
    );

    app.post(
      '/agent/v1/log',
      {
        ...route,
        schema: {
          tags: ['agent'],
          summary: 'Installer log lines, stored with the run',
          security: [],
          body: Type.Object(
            {
              lines: Type.Array(
                Type.Object(
                  { at: Type.Optional(Type.String({ format: 'date-time' })), stream: Type.Optional(Type.String({ maxLength: 32 })), line: Type.String({ maxLength: 16_384 }) },
                  { additionalProperties: false },
                ),
                { maxItems: 2000 },
              ),
            },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ stored: Type.Integer() }), ...errors },
        },
      },
      async (req) => {
        const { lines } = req.body as { lines: { at?: string; stream?: string; line: string }[] };
        const now = at();
        await storeLog(req.run!.runId, lines.map((l) => ({ at: l.at ?? now, stream: l.stream ?? 'agent', line: l.line })));
        return { stored: lines.length };
      },
    );

    app.post(
      '/agent/v1/heartbeat',
      {
        ...route,
        schema: {
          tags: ['agent'],
          summary: 'The agent is alive; the answer says what to do next',
          security: [],
          body: Type.Object(
            {
              step: Type.Optional(Type.String({ maxLength: 64 })),
              progress: Type.Optional(
                Type.Object(
                  {
                    bytesWritten: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
                    totalBytes: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
                    bytesPerSecond: Type.Number({ minimum: 0, maximum: 1e12 }),
                  },
                  { additionalProperties: false },
                ),
              ),
            },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ next: Type.String() }), ...errors },
        },
      },
      async (req) => {
        const body = req.body as { progress?: { bytesWritten: number; totalBytes: number; bytesPerSecond: number } };
        if (body.progress) await deps.deploy.onProgress(req.run!, body.progress);
        return { next: 'wait' };
      },
    );

    app.post(
      '/agent/v1/steps/:name',
      {
        ...route,
        schema: {
          tags: ['agent'],
          summary: 'A deploy or wipe step started, succeeded or failed',
          security: [],
          params: Type.Object({ name: Type.String({ pattern: '^[a-z][a-z0-9-]{0,31}$' }) }, { additionalProperties: false }),
          body: Type.Object(
            {
              status: Type.String({ enum: ['running', 'succeeded', 'failed'] }),
              message: Type.Optional(Type.String({ maxLength: 4096 })),
              details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
            },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ next: Type.Optional(Type.String({ enum: ['poweroff', 'reboot', 'wait'] })) }), ...errors },
        },
      },
      async (req) => {
        const p = req.run!;
        const { name } = req.params as { name: string };
        const body = req.body as { status: 'running' | 'succeeded' | 'failed'; message?: string; details?: Record<string, unknown> };
        const now = at();
        // The message first: beyond the log budget the report is refused before it changes anything.
        if (body.message) await storeLog(p.runId, [{ at: now, stream: 'step', line: `${name}: ${body.status}: ${body.message}` }]);
        await updateStep(deps.store.db, p.runId, name, body.status, now, body.message ?? null);
        await trace(p, `step:${name}:${body.status}`, body.details ?? null);
        if (p.kind === 'wipe' && name === 'erase' && body.status === 'succeeded') {
          await deps.engine.act(p.machineId, 'wipe-done', { actor: { kind: 'agent', name: `run:${p.runId}` }, runId: p.runId, reason: body.message ?? 'disks erased' });
          return { next: 'poweroff' as const };
        }
        return {};
      },
    );

    app.post(
      '/agent/v1/boot-local',
      {
        ...route,
        schema: {
          tags: ['agent'],
          summary: 'The image is written: boot the installed OS from now on',
          security: [],
          body: Type.Object({}, { additionalProperties: false }),
          response: { 200: Type.Object({ next: Type.String({ enum: ['reboot'] }) }), ...errors },
        },
        preValidation: async (req) => {
          req.body ??= {};
        },
      },
      async (req) => {
        await deps.deploy.bootLocal(req.run!);
        return { next: 'reboot' as const };
      },
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
        const p = req.run!;
        const { name } = req.params as { name: string };
        const run = await getRun(deps.store.db, p.runId);
        if (run.kind !== 'deploy' || run.params.image !== name) throw new PlinthError('forbidden', `run ${p.runId} does not deploy image ${name}`);
        const image = await deps.images.get(name);
        await trace(p, 'image', req.headers.range ? { range: req.headers.range } : { bytes: image.sizeBytes });
        return deps.sendFile(reply, deps.images.path(image));
      },
    );

    app.post(
      '/agent/v1/installed',
      {
        config: { role: 'public' },
        // The callback secret is checked before the body is read, like the run token above.
        onRequest: async (req) => {
          const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
          if (!m || !(await deps.deploy.runByCallback(m[1]!))) throw new PlinthError('unauthorized', 'callback token is unknown, or its deploy has ended');
        },
        schema: {
          tags: ['agent'],
          summary: "The installed OS (or an installer's last step) reports in with its deploy's callback token",
          security: [],
          body: Type.Object(
            { event: Type.String({ enum: ['installed', 'first-boot'] }), source: Type.Optional(Type.String({ maxLength: 64 })) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ machine: Type.String(), state: Type.String() }), ...errors },
        },
      },
      async (req) => {
        const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
        const found = m ? await deps.deploy.runByCallback(m[1]!) : null;
        if (!found) throw new PlinthError('unauthorized', 'callback token is unknown, or its deploy has ended');
        const machine = await deps.deploy.installed(found.run, found.machine, (req.body as { event: string }).event, req.ip ?? null);
        return { machine: machine.name, state: machine.state };
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
          body: Type.Object(
            { code: Type.String({ maxLength: 32 }), message: Type.String({ maxLength: 4096 }), stage: Type.Optional(Type.String({ maxLength: 64 })) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ next: Type.String() }), ...errors },
        },
      },
      async (req) => {
        const p = req.run!;
        const body = req.body as { code: string; message: string; stage?: string };
        await trace(p, 'agent-failed', { code: body.code, message: body.message });
        await deps.engine.act(p.machineId, 'fail', {
          actor: { kind: 'agent', name: `run:${p.runId}` },
          runId: p.runId,
          reason: body.message,
          error: { code: body.code, message: body.message, ...(body.stage ? { stage: body.stage } : {}) },
        });
        return { next: 'poweroff' };
      },
    );
  };
}
