import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { errorBody } from './errors.js';

/**
 * What the plain-HTTP boot listener passes on: the endpoints firmware and OS installers
 * call without a token (iPXE scripts, kernels, initrds, files, rendered seeds, and the
 * installed OS's phone-home). Everything else — the API, the agent API with its run
 * tokens, health — is answered 404 there, so that with TLS on nothing authenticated ever
 * travels in clear text through this port.
 */
export function isPublicBootRequest(method: string | undefined, url: string | undefined): boolean {
  const path = (url ?? '').split('?')[0]!;
  // A path that climbs (`/boot/../api/…`, also percent-encoded) could be normalised by
  // something on the way into a route this listener must not reach; refuse it outright.
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return false;
  }
  if (decoded.includes('..') || decoded.includes('\\')) return false;
  if (method === 'GET' || method === 'HEAD') return path === '/boot.ipxe' || path.startsWith('/boot/');
  return method === 'POST' && path === '/agent/v1/installed';
}

/**
 * A plain-HTTP server in front of the same Fastify app as the main listener: allowed
 * requests go through the app's router (same hooks, logging, trace), the rest get 404.
 * Call after `app.ready()`.
 */
export function createBootListener(app: FastifyInstance): Server {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (isPublicBootRequest(req.method, req.url)) {
      app.routing(req, res);
      return;
    }
    const path = (req.url ?? '').split('?')[0];
    res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(errorBody('not_found', `${path} is not served on the boot listener; use the controller's HTTPS address`)));
  });
  // Firmware keeps connections open between downloads; shutdown must not wait for them.
  server.keepAliveTimeout = 5_000;
  return server;
}
