/**
 * A Redfish client for one service: authentication (SessionService first, HTTP basic as
 * the fallback), JSON requests, and Redfish error bodies turned into ProviderErrors.
 *
 * Sessions are preferred because a BMC checks a password once per session instead of once
 * per request (several BMCs hash passwords slowly and rate-limit failed logins); the session
 * is deleted on `close()` because BMCs allow only a handful of concurrent sessions.
 */
import { EndpointHttpClient, redact, statusFailure, type HttpResponse } from '../endpoint-http.js';
import { ProviderError, type Endpoint, type ProviderContext } from '../types.js';

export const REDFISH = 'redfish';
const SERVICE_ROOT = '/redfish/v1/';
const DEFAULT_SESSIONS = '/redfish/v1/SessionService/Sessions';

export type RedfishAuthMode = 'session' | 'basic';

/** A Redfish resource as returned by the service: JSON with `@odata.id` links. */
export type RedfishResource = Record<string, unknown>;

interface Session {
  token: string;
  /** Where to DELETE the session; absent when the service gave no location. */
  location: string | undefined;
}

export interface RedfishReply {
  resource: RedfishResource;
  etag: string | undefined;
}

/** DMTF's generic `error.message`, which only points at the entries below it. */
const POINTS_AT_EXTENDED_INFO = /see ExtendedInfo/i;

/**
 * The message of a Redfish error body. `error.message` is kept: BMCs such as sushy-tools
 * put the only human text there ("Incorrect username or password") and list entries that
 * carry just a `MessageId`. Each entry's `Message` is added (after its `MessageId`); ids of
 * entries without text follow in parentheses. DMTF's generic "See ExtendedInfo" message is
 * dropped when the entries it points at have text.
 */
export function redfishErrorMessage(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const error = (body as { error?: unknown }).error;
  if (!error || typeof error !== 'object') return undefined;
  const e = error as { message?: unknown; code?: unknown; '@Message.ExtendedInfo'?: unknown };
  const texts: string[] = [];
  const bareIds: string[] = [];
  const extended = Array.isArray(e['@Message.ExtendedInfo']) ? e['@Message.ExtendedInfo'] : [];
  for (const info of extended) {
    if (!info || typeof info !== 'object') continue;
    const { Message: message, MessageId: id } = info as { Message?: unknown; MessageId?: unknown };
    if (typeof message === 'string' && message !== '') texts.push(typeof id === 'string' ? `${id}: ${message}` : message);
    else if (typeof id === 'string' && id !== '') bareIds.push(id);
  }
  const parts: string[] = [];
  if (typeof e.message === 'string' && e.message !== '' && !(texts.length > 0 && POINTS_AT_EXTENDED_INFO.test(e.message))) parts.push(e.message);
  parts.push(...texts);
  if (parts.length === 0 && typeof e.code === 'string' && e.code !== '') parts.push(e.code);
  const ids = [...new Set(bareIds)].filter((id) => !parts.some((p) => p.includes(id)));
  if (parts.length === 0) return ids.length ? ids.join(', ') : undefined;
  return ids.length ? `${parts.join('; ')} (${ids.join(', ')})` : parts.join('; ');
}

export class RedfishClient {
  readonly http: EndpointHttpClient;
  private readonly endpoint: Endpoint;
  private readonly forcedAuth: RedfishAuthMode | undefined;
  private session: Session | undefined;
  private useBasic = false;
  private login: Promise<void> | undefined;

  constructor(endpoint: Endpoint) {
    this.endpoint = endpoint;
    const auth = endpoint.options?.['auth'];
    this.forcedAuth = auth === 'session' || auth === 'basic' ? auth : undefined;
    this.http = new EndpointHttpClient({
      provider: REDFISH,
      baseUrl: endpoint.address,
      caCert: endpoint.caCert,
      insecure: endpoint.insecure,
      secrets: () => [this.endpoint.password, this.session?.token],
    });
  }

  async get(path: string, ctx: ProviderContext): Promise<RedfishReply> {
    const res = await this.send('GET', path, undefined, ctx);
    if (!res.json || typeof res.json !== 'object') {
      throw new ProviderError(REDFISH, 'protocol', `GET ${this.pathOf(path)}: answer is not a JSON object`);
    }
    return { resource: res.json as RedfishResource, etag: res.headers['etag'] };
  }

  async patch(path: string, body: unknown, ctx: ProviderContext, etag?: string): Promise<void> {
    await this.send('PATCH', path, body, ctx, etag ? { 'if-match': etag } : undefined);
  }

  async post(path: string, body: unknown, ctx: ProviderContext): Promise<void> {
    await this.send('POST', path, body, ctx);
  }

  /** Ends the session, if one was opened. Best effort: a dead BMC must not block shutdown. */
  async close(ctx: ProviderContext): Promise<void> {
    const session = this.session;
    this.session = undefined;
    try {
      if (session?.location) {
        const res = await this.http.request('DELETE', session.location, { headers: { 'x-auth-token': session.token }, ctx });
        if (res.status >= 300 && res.status !== 404) ctx.log.warn('redfish session not deleted', { status: res.status });
      }
    } catch (err) {
      ctx.log.warn('redfish session not deleted', { error: err instanceof Error ? err.message : String(err) });
    } finally {
      await this.http.close();
    }
  }

  /** The authentication in use once a request has been made (for tests and diagnostics). */
  get authMode(): RedfishAuthMode | undefined {
    if (this.session) return 'session';
    return this.useBasic ? 'basic' : undefined;
  }

  private pathOf(path: string): string {
    return this.http.url(path).pathname;
  }

  private async send(method: string, path: string, body: unknown, ctx: ProviderContext, extra?: Record<string, string>): Promise<HttpResponse> {
    await this.authenticate(ctx);
    let res = await this.http.request(method, path, { headers: { ...this.authHeaders(), ...extra }, body, ctx });
    if (res.status === 401 && this.session) {
      // Sessions expire on the BMC's own schedule (SessionTimeout): log in again once.
      this.session = undefined;
      await this.authenticate(ctx);
      res = await this.http.request(method, path, { headers: { ...this.authHeaders(), ...extra }, body, ctx });
    }
    if (res.status >= 400) throw this.statusError(method, path, res);
    return res;
  }

  private authHeaders(): Record<string, string> {
    if (this.session) return { 'x-auth-token': this.session.token };
    if (this.useBasic) {
      const user = this.endpoint.username ?? '';
      const pass = this.endpoint.password ?? '';
      return { authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` };
    }
    return {};
  }

  private async authenticate(ctx: ProviderContext): Promise<void> {
    if (this.session || this.useBasic) return;
    if (this.forcedAuth === 'basic') {
      this.useBasic = true;
      return;
    }
    // Concurrent first calls share one login instead of opening several sessions.
    this.login ??= this.openSession(ctx).finally(() => {
      this.login = undefined;
    });
    await this.login;
  }

  private async openSession(ctx: ProviderContext): Promise<void> {
    const sessionsPath = await this.sessionsPath(ctx);
    if (sessionsPath === undefined && this.forcedAuth !== 'session') {
      // The service root advertises no SessionService (older firmware): basic auth on every request.
      ctx.log.debug('redfish: no session service advertised, using basic auth');
      this.useBasic = true;
      return;
    }
    const res = await this.http.request('POST', sessionsPath ?? DEFAULT_SESSIONS, {
      body: { UserName: this.endpoint.username ?? '', Password: this.endpoint.password ?? '' },
      ctx,
    });
    if (res.status === 401 || res.status === 403) {
      const said = redfishErrorMessage(res.json);
      const detail = said ? `: ${redact(said, [this.endpoint.password])}` : '';
      throw new ProviderError(REDFISH, 'auth', `${this.http.baseUrl.host}: login refused for user '${this.endpoint.username ?? ''}' (HTTP ${res.status})${detail}`);
    }
    if ((res.status === 404 || res.status === 405 || res.status === 501) && this.forcedAuth !== 'session') {
      // No SessionService on this BMC (older firmware): every request carries basic auth.
      ctx.log.debug('redfish: no session service, using basic auth', { status: res.status });
      this.useBasic = true;
      return;
    }
    if (res.status >= 400) throw this.statusError('POST', sessionsPath ?? DEFAULT_SESSIONS, res);
    const token = res.headers['x-auth-token'];
    if (!token) throw new ProviderError(REDFISH, 'protocol', `${this.http.baseUrl.host}: session created without an X-Auth-Token header`);
    // NOTE: some services answer without a Location header (python-redfish-library #172, a Dell
    // PowerVault), others with an absolute URL (HPE iLO); the body's @odata.id covers the first.
    const odataId = res.json && typeof res.json === 'object' ? (res.json as RedfishResource)['@odata.id'] : undefined;
    const location = res.headers['location'] ?? (typeof odataId === 'string' ? odataId : undefined);
    this.session = { token, location };
  }

  /**
   * Where sessions are created, from the service root (readable without credentials,
   * DSP0266): its `Links.Sessions`, the standard path when the root names a SessionService
   * or cannot be read, undefined when the root is readable and names none.
   */
  private async sessionsPath(ctx: ProviderContext): Promise<string | undefined> {
    const res = await this.http.request('GET', SERVICE_ROOT, { ctx });
    const root = res.status < 400 && res.json && typeof res.json === 'object' ? (res.json as RedfishResource) : undefined;
    if (!root) return DEFAULT_SESSIONS;
    const links = root['Links'] as { Sessions?: { '@odata.id'?: unknown } } | undefined;
    const link = links?.Sessions?.['@odata.id'];
    if (typeof link === 'string') return link;
    return root['SessionService'] ? DEFAULT_SESSIONS : undefined;
  }

  private statusError(method: string, path: string, res: HttpResponse): ProviderError {
    const failure = statusFailure(res.status);
    const detail = redact(redfishErrorMessage(res.json) ?? (res.text.slice(0, 200) || 'no detail'), [this.endpoint.password]);
    const hint = failure === 'auth' ? ' (check the user name and password)' : '';
    return new ProviderError(REDFISH, failure, `${this.http.baseUrl.host}: ${method} ${this.pathOf(path)} answered HTTP ${res.status}: ${detail}${hint}`);
  }
}
