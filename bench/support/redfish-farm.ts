import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A farm of simulated Redfish BMCs for benchmarks: each BMC its own HTTP listener (as real
 * BMCs are separate endpoints), answering the resources Plinth's Redfish provider uses —
 * service root, sessions, systems, boot override, reset — after a random latency, and
 * recording how many requests it had in flight at once.
 */
export interface FarmBmc {
  url: string;
  inFlight: number;
  peakInFlight: number;
  requests: number;
  systems: { id: string; power: 'On' | 'Off'; bootTarget: string }[];
}

export interface Farm {
  bmcs: FarmBmc[];
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  let s = '';
  for await (const c of req) s += c;
  return s ? (JSON.parse(s) as Record<string, unknown>) : {};
}

export async function startFarm(o: {
  bmcs: number;
  systemsPerBmc: number;
  latencyMs: [number, number];
  /** Told after a reset that leaves a system running (On, ForceRestart…): the machine boots now. */
  onBoot?: (bmc: number, system: string) => void;
}): Promise<Farm> {
  const servers: Server[] = [];
  const bmcs: FarmBmc[] = [];
  for (let b = 0; b < o.bmcs; b++) {
    const bmc: FarmBmc = {
      url: '',
      inFlight: 0,
      peakInFlight: 0,
      requests: 0,
      systems: Array.from({ length: o.systemsPerBmc }, (_, i) => ({ id: `s${i}`, power: 'Off' as const, bootTarget: 'None' })),
    };
    const server = createServer(async (req, res) => {
      bmc.inFlight++;
      bmc.requests++;
      bmc.peakInFlight = Math.max(bmc.peakInFlight, bmc.inFlight);
      try {
        await new Promise((r) => setTimeout(r, o.latencyMs[0] + Math.random() * (o.latencyMs[1] - o.latencyMs[0])));
        const url = (req.url ?? '/').replace(/\/+$/, '') || '/';
        const sys = /^\/redfish\/v1\/Systems\/(s\d+)(\/Actions\/ComputerSystem\.Reset)?$/.exec(url);
        if (url === '/redfish/v1') {
          send(res, 200, { '@odata.id': '/redfish/v1/', SessionService: { '@odata.id': '/redfish/v1/SessionService' }, Systems: { '@odata.id': '/redfish/v1/Systems' } });
        } else if (url === '/redfish/v1/SessionService/Sessions' && req.method === 'POST') {
          await readBody(req);
          send(res, 201, { '@odata.id': '/redfish/v1/SessionService/Sessions/1' }, { 'x-auth-token': `t${b}`, location: '/redfish/v1/SessionService/Sessions/1' });
        } else if (url.startsWith('/redfish/v1/SessionService/Sessions/') && req.method === 'DELETE') {
          send(res, 204);
        } else if (url === '/redfish/v1/Systems') {
          send(res, 200, { Members: bmc.systems.map((s) => ({ '@odata.id': `/redfish/v1/Systems/${s.id}` })), 'Members@odata.count': bmc.systems.length });
        } else if (sys && !sys[2]) {
          const s = bmc.systems.find((x) => x.id === sys[1]);
          if (!s) return send(res, 404, { error: { message: 'no such system' } });
          if (req.method === 'PATCH') {
            const body = await readBody(req);
            s.bootTarget = String((body.Boot as { BootSourceOverrideTarget?: string })?.BootSourceOverrideTarget ?? s.bootTarget);
            return send(res, 204);
          }
          send(res, 200, {
            '@odata.id': `/redfish/v1/Systems/${s.id}`,
            Id: s.id,
            UUID: `${b.toString(16).padStart(8, '0')}-0000-4000-8000-${Number(s.id.slice(1)).toString(16).padStart(12, '0')}`,
            SerialNumber: `FARM-${b}-${s.id}`,
            Manufacturer: 'Plinth Farm',
            PowerState: s.power,
            Boot: { BootSourceOverrideTarget: s.bootTarget, BootSourceOverrideEnabled: 'Once', 'BootSourceOverrideTarget@Redfish.AllowableValues': ['None', 'Pxe', 'Hdd', 'Cd'] },
            Actions: { '#ComputerSystem.Reset': { target: `/redfish/v1/Systems/${s.id}/Actions/ComputerSystem.Reset`, 'ResetType@Redfish.AllowableValues': ['On', 'ForceOff', 'GracefulShutdown', 'ForceRestart'] } },
          });
        } else if (sys && sys[2] && req.method === 'POST') {
          const s = bmc.systems.find((x) => x.id === sys[1])!;
          const body = await readBody(req);
          s.power = body.ResetType === 'ForceOff' || body.ResetType === 'GracefulShutdown' ? 'Off' : 'On';
          send(res, 204);
          if (s.power === 'On') o.onBoot?.(b, s.id);
        } else {
          send(res, 404, { error: { message: `no ${url}` } });
        }
      } catch {
        // The client went away mid-request (a controller killed while it talked to this BMC).
        res.destroy();
      } finally {
        bmc.inFlight--;
      }
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    bmc.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    servers.push(server);
    bmcs.push(bmc);
  }
  return {
    bmcs,
    close: () => Promise.all(servers.map((s) => new Promise<void>((r) => (s.closeAllConnections(), s.close(() => r()))))).then(() => undefined),
  };
}
