/**
 * The vSphere Automation REST API (`/api`, vCenter 7.0 U2 and later): a session from
 * `POST /api/session` with basic auth, then the `vmware-api-session-id` header. Errors are
 * `{"error_type": "NOT_FOUND", "messages": [{"id", "default_message", "args"}]}`
 * (vSphere Automation API reference, "Errors").
 */
import { EndpointHttpClient, redact, statusFailure, type HttpResponse } from '../endpoint-http.js';
import { ProviderError, type Endpoint, type ProviderContext, type ProviderFailure } from '../types.js';
import { sessionRefusedAgain, VSPHERE } from './vsphere-soap.js';

const ERROR_TYPES: Record<string, ProviderFailure> = {
  UNAUTHENTICATED: 'auth',
  UNAUTHORIZED: 'auth',
  NOT_FOUND: 'not-found',
  UNSUPPORTED: 'unsupported',
  SERVICE_UNAVAILABLE: 'transient',
  RESOURCE_BUSY: 'transient',
  TIMED_OUT: 'transient',
  RESOURCE_INACCESSIBLE: 'transient',
  CONCURRENT_CHANGE: 'transient',
};

export interface VsphereRestError {
  errorType: string | undefined;
  message: string;
}

export function restError(res: HttpResponse): VsphereRestError {
  const body = res.json as { error_type?: unknown; messages?: Array<{ default_message?: unknown }>; value?: { error_type?: unknown; messages?: Array<{ default_message?: unknown }> } } | undefined;
  // /api answers the error at top level; the older /rest wrapped it in "value".
  const e = body?.error_type ? body : body?.value;
  const messages = (e?.messages ?? []).map((m) => (typeof m.default_message === 'string' ? m.default_message : '')).filter(Boolean);
  return { errorType: typeof e?.error_type === 'string' ? e.error_type : undefined, message: messages.join('; ') || res.statusText || `HTTP ${res.status}` };
}

export class VsphereRestClient {
  private readonly http: EndpointHttpClient;
  private readonly endpoint: Endpoint;
  private session: string | undefined;
  private login: Promise<boolean> | undefined;

  constructor(endpoint: Endpoint, http: EndpointHttpClient) {
    this.endpoint = endpoint;
    this.http = http;
  }

  /**
   * Opens a session. Resolves false when this server has no Automation REST API (404: an
   * older vCenter, an ESXi host, the simulator), throws `auth` on refused credentials.
   */
  async open(ctx: ProviderContext): Promise<boolean> {
    if (this.session) return true;
    this.login ??= (async () => {
      const basic = Buffer.from(`${this.endpoint.username ?? ''}:${this.endpoint.password ?? ''}`).toString('base64');
      const res = await this.http.request('POST', '/api/session', { headers: { authorization: `Basic ${basic}` }, ctx });
      if (res.status === 404 || res.status === 405 || res.status === 501) return false;
      if (res.status >= 400) throw this.error('POST', '/api/session', res);
      const id = typeof res.json === 'string' ? res.json : undefined;
      if (!id) throw new ProviderError(VSPHERE, 'protocol', `${this.http.baseUrl.host}: POST /api/session returned no session id`);
      this.session = id;
      return true;
    })().finally(() => {
      this.login = undefined;
    });
    return this.login;
  }

  async close(ctx: ProviderContext): Promise<void> {
    const session = this.session;
    this.session = undefined;
    if (session) await this.http.request('DELETE', '/api/session', { headers: { 'vmware-api-session-id': session }, ctx }).catch(() => undefined);
  }

  /** Sends a request; rejects with a classified error unless the status is 2xx or accepted by `tolerate`. */
  async request(method: string, path: string, ctx: ProviderContext, body?: unknown, tolerate?: (e: VsphereRestError) => boolean): Promise<unknown> {
    const send = (): Promise<HttpResponse> => this.http.request(method, path, { headers: { 'vmware-api-session-id': this.session ?? '' }, body, ctx });
    if (!(await this.open(ctx))) throw new ProviderError(VSPHERE, 'unsupported', `${this.http.baseUrl.host}: no Automation REST API`);
    let res = await send();
    if (res.status === 401) {
      // Sessions expire after idle time on vCenter: log in again once.
      this.session = undefined;
      await this.open(ctx);
      res = await send();
      if (res.status === 401) throw sessionRefusedAgain(this.http.baseUrl.host, `${method} ${path}: ${redact(restError(res).message, [this.endpoint.password])}`);
    }
    if (res.status >= 400) {
      if (tolerate?.(restError(res))) return undefined;
      throw this.error(method, path, res);
    }
    return res.json;
  }

  private error(method: string, path: string, res: HttpResponse): ProviderError {
    const e = restError(res);
    const failure = (e.errorType && ERROR_TYPES[e.errorType]) || statusFailure(res.status);
    const hint = failure === 'auth' ? ' (check the user name and password)' : '';
    const detail = redact(e.message, [this.endpoint.password]);
    return new ProviderError(VSPHERE, failure, `${this.http.baseUrl.host}: ${method} ${path} answered ${res.status}${e.errorType ? ` ${e.errorType}` : ''}: ${detail}${hint}`);
  }
}
