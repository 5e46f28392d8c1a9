import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { EndpointHttpClient, redact, statusFailure } from './endpoint-http.js';

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
});
