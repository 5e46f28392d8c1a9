import type { FastifyInstance } from 'fastify';
import { roleAtLeast } from '../auth/tokens.js';
import type { AppServices } from './context.js';
import { PlinthError } from '../core/errors.js';
import { registerNulRefusal } from './nul.js';

/**
 * The API token an Authorization header carries: `Bearer <token>`, or HTTP Basic with the token
 * as the password and any user name (what python-requests sends from ~/.netrc, so clients that
 * set no header of their own, such as Tateru's, authenticate). Null for anything else.
 */
export function tokenOf(header: string): string | null {
  const bearer = /^Bearer\s+(\S+)$/i.exec(header);
  if (bearer) return bearer[1]!;
  const basic = /^Basic\s+([A-Za-z0-9+/]+={0,2})$/i.exec(header);
  if (!basic) return null;
  const text = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  const password = colon < 0 ? '' : text.slice(colon + 1);
  return password.length > 0 ? password : null;
}

/**
 * Bearer-token (or Basic, the token as password) authentication and role checks for every route. Routes say what they need in
 * `config.role`; health, the OpenAPI document and the boot endpoints are `public`.
 */
export function registerAuth(app: FastifyInstance, services: AppServices): void {
  app.decorateRequest('principal', null);
  // Input hygiene every route shares runs once the caller is known (preValidation, after this onRequest).
  registerNulRefusal(app);
  // Refusals are thrown: the error handler answers them (the challenge header set here stays).
  app.addHook('onRequest', async (req, reply) => {
    const cfg = req.routeOptions.config;
    // The interactive API docs are static pages registered by a plugin: public like the document they show.
    if (req.url.startsWith('/api/v1/docs')) return;
    const need = cfg?.role ?? (req.method === 'GET' || req.method === 'HEAD' ? 'reader' : 'operator');
    if (need === 'public') return;
    const header = req.headers.authorization;
    const presented = header ? tokenOf(header) : null;
    if (!presented) {
      reply.header('www-authenticate', 'Bearer realm="plinth"');
      throw new PlinthError('unauthorized', header ? 'Authorization header must be "Bearer <token>" or Basic with the token as password' : 'missing bearer token (Authorization: Bearer <token>)');
    }
    const token = await services.tokens.verify(presented);
    if (!token) {
      reply.header('www-authenticate', 'Bearer realm="plinth", error="invalid_token"');
      throw new PlinthError('unauthorized', 'token is unknown, revoked or expired');
    }
    req.principal = { tokenId: token.id, name: token.name, role: token.role };
    if (!roleAtLeast(token.role, need)) {
      throw new PlinthError('forbidden', `token '${token.name}' has role ${token.role}; this needs ${need}`, { details: { role: token.role, required: need } });
    }
  });
}
