import { Type } from 'typebox';
import type { App } from '../context.js';
import { ErrorResponse, StringEnum } from '../schemas.js';
import { SESSION_STATES, type MulticastSessions } from '../../deploy/multicast.js';
import { MULTICAST_TRANSPORTS } from '../../protocol/agent.js';

const MulticastSessionSchema = Type.Object(
  {
    id: Type.String(),
    image: Type.String(),
    sha256: Type.String(),
    sizeBytes: Type.Integer(),
    portbase: Type.Integer({ description: 'the two UDP ports the session takes: portbase and portbase + 1' }),
    state: StringEnum([...SESSION_STATES]),
    transport: StringEnum([...MULTICAST_TRANSPORTS]),
    ttl: Type.Integer({ description: 'uftp: how many routers the packets cross (udpcast stays on its segment)' }),
    rateBitsPerSecond: Type.Integer(),
    minReceivers: Type.Integer(),
    maxWaitSeconds: Type.Integer(),
    members: Type.Array(Type.String(), { description: 'the deploy runs that were handed the session' }),
    receivers: Type.Integer({ description: 'receivers the sender saw join (uftp: those that registered)' }),
    handedOut: Type.Integer({ description: 'uftp: the machines handed the session in their hello' }),
    serverFingerprint: Type.Union([Type.String(), Type.Null()], { description: "uftp: the fingerprint of the session's key, which receivers require" }),
    openedAt: Type.String({ format: 'date-time' }),
    startedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    endedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    bytesSent: Type.Integer({ description: "image bytes the sender has sent (its last statistics line; at the end, the image's size)" }),
    retransmits: Type.Integer({ description: 'blocks sent again for receivers that missed them' }),
    retransmitPercent: Type.Number({ description: "retransmitted blocks as a share of the blocks sent: the session's egress is about bytesSent × (1 + retransmitPercent / 100)" }),
    error: Type.Union([Type.String(), Type.Null()]),
  },
  { $id: 'MulticastSession' },
);

/**
 * The multicast sessions this controller runs (docs/mass-deploy.md): they live in its process
 * with their senders, so another controller on the same database shows its own.
 */
export const multicastRoutes = (sessions: MulticastSessions) => async (app: App): Promise<void> => {
  app.get(
    '/api/v1/multicast-sessions',
    {
      schema: {
        tags: ['deploy'],
        summary: "This controller's multicast deploy sessions, newest first: state, receivers, the bytes sent and retransmitted",
        response: { 200: Type.Object({ items: Type.Array(MulticastSessionSchema) }), 401: ErrorResponse, 403: ErrorResponse },
      },
    },
    async () => ({ items: sessions.list().reverse() }),
  );
};
