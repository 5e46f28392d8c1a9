import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { EndpointHttpClient, redact, statusFailure } from './endpoint-http.js';
import { createRedfishProvider } from './redfish/index.js';

/** An HTTP server that records what reaches it and answers a Redfish-looking power state. */
async function recordingServer(): Promise<{ server: Server; url: string; seen: Array<{ url: string; headers: IncomingHttpHeaders }> }> {
  const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ '@odata.id': req.url, PowerState: 'On' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

describe('HTTP transport', () => {
  it('classifies statuses the same way for every HTTP provider', () => {
    expect([401, 403, 404, 501, 503, 500, 429, 400, 409].map(statusFailure)).toEqual(['auth', 'auth', 'not-found', 'unsupported', 'transient', 'transient', 'transient', 'protocol', 'protocol']);
  });

  it('redacts secrets from text', () => {
    expect(redact('login failed for s3cret-pw at host', ['s3cret-pw', undefined])).toBe('login failed for *** at host');
  });

  it('turns a refused connection into unreachable and a silent server into a timeout', async () => {
    const refused = new EndpointHttpClient({ provider: 'redfish', baseUrl: 'http://127.0.0.1:9' });
    await expect(refused.request('GET', '/redfish/v1', { ctx: { timeoutMs: 2_000 } })).rejects.toMatchObject({ failure: 'unreachable' });
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    try {
      const client = new EndpointHttpClient({ provider: 'redfish', baseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` });
      await expect(client.request('GET', '/redfish/v1', { ctx: { timeoutMs: 200 } })).rejects.toMatchObject({ failure: 'timeout', message: expect.stringContaining('200 ms') });
      await client.close();
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  it('sends nothing to an origin other than the endpoint, however the link is written', async () => {
    const bmc = await recordingServer();
    const elsewhere = await recordingServer();
    const client = new EndpointHttpClient({ provider: 'redfish', baseUrl: bmc.url });
    try {
      const port = new URL(elsewhere.url).port;
      const foreign = [`${elsewhere.url}/redfish/v1/Systems/1`, `//127.0.0.1:${port}/x`, `/\\127.0.0.1:${port}/x`, `https://127.0.0.1:${new URL(bmc.url).port}/x`];
      for (const link of foreign) {
        await expect(client.request('GET', link, { headers: { authorization: 'Basic c2VjcmV0' }, ctx: { timeoutMs: 2_000 } })).rejects.toMatchObject({ failure: 'protocol' });
      }
      expect(elsewhere.seen).toEqual([]);
      // Its own origin, as a path or as an absolute link, is reached.
      expect((await client.request('GET', `${bmc.url}/redfish/v1/Systems/1`, { ctx: { timeoutMs: 2_000 } })).status).toBe(200);
      expect(bmc.seen.map((r) => r.url)).toEqual(['/redfish/v1/Systems/1']);
    } finally {
      await client.close();
      bmc.server.close();
      elsewhere.server.close();
    }
  });

  it('keeps a Redfish provider from carrying the BMC password to a reference on another host', async () => {
    const bmc = await recordingServer();
    const elsewhere = await recordingServer();
    const provider = createRedfishProvider({ address: bmc.url, username: 'admin', password: 'bmc-s3cret', options: { auth: 'basic' } });
    const log = { debug: () => undefined, info: () => undefined, warn: () => undefined };
    try {
      await expect(provider.power.getPowerState(`${elsewhere.url}/redfish/v1/Systems/1`, { timeoutMs: 2_000, log })).rejects.toMatchObject({ failure: 'protocol' });
      expect(elsewhere.seen).toEqual([]);
      expect(await provider.power.getPowerState('/redfish/v1/Systems/1', { timeoutMs: 2_000, log })).toBe('on');
      expect(bmc.seen[0]!.headers.authorization).toBe(`Basic ${Buffer.from('admin:bmc-s3cret').toString('base64')}`);
    } finally {
      await provider.close?.();
      bmc.server.close();
      elsewhere.server.close();
    }
  });
});
