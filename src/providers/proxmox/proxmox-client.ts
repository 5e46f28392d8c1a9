/**
 * A client for the Proxmox VE HTTP API (`/api2/json`, described by Proxmox's `apidoc.js`)
 * authenticated with an API token: `Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET`.
 * The endpoint's `username` is the token id (`automation@pve!plinth`), its `password` the
 * token secret. Tokens need no ticket or CSRF token, so every call is one request.
 *
 * Answers are `{"data": …}`. Failures carry the message in the HTTP reason phrase (and, in
 * newer releases, in a `message` member) plus per-parameter `errors`
 * (pve-http-server, PVE/APIServer/Formatter/Standard.pm). Proxmox answers 500 for most
 * failures, permanent or not, so the message decides the class.
 */
import { abortableSleep } from '../call-deadline.js';
import { EndpointHttpClient, redact, type HttpResponse } from '../endpoint-http.js';
import { ProviderError, type Endpoint, type ProviderContext, type ProviderFailure } from '../types.js';

export const PROXMOX = 'proxmox';
const API = '/api2/json';
const TASK_POLL_MS = 300;

export type ProxmoxParams = Record<string, string | number | boolean | undefined>;

function form(params: ProxmoxParams): string {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) body.set(k, typeof v === 'boolean' ? (v ? '1' : '0') : String(v));
  return body.toString();
}

/** Classifies a Proxmox failure from its status and message. */
export function proxmoxFailure(status: number, message: string): ProviderFailure {
  if (status === 401 || status === 403) return 'auth';
  if (status === 404 || /does not exist|no such (vm|node|storage)|not found/i.test(message)) return 'not-found';
  if (status === 501) return 'unsupported';
  if (status === 595 || status === 596) return 'unreachable'; // pveproxy could not reach the other cluster node
  if (/got timeout|timeout|can't lock file|is locked|temporarily|try again/i.test(message)) return 'transient';
  if (status === 500) return 'protocol';
  if (status >= 502 || status === 429 || status === 408) return 'transient';
  return 'protocol';
}

export class ProxmoxClient {
  readonly http: EndpointHttpClient;
  private readonly endpoint: Endpoint;

  constructor(endpoint: Endpoint) {
    this.endpoint = endpoint;
    this.http = new EndpointHttpClient({
      provider: PROXMOX,
      baseUrl: endpoint.address,
      caCert: endpoint.caCert,
      insecure: endpoint.insecure,
      secrets: () => [this.endpoint.password],
    });
  }

  private headers(): Record<string, string> {
    return { authorization: `PVEAPIToken=${this.endpoint.username ?? ''}=${this.endpoint.password ?? ''}` };
  }

  async get<T>(path: string, ctx: ProviderContext, query: ProxmoxParams = {}): Promise<T> {
    const qs = form(query);
    const res = await this.http.request('GET', `${API}${path}${qs ? `?${qs}` : ''}`, { headers: this.headers(), ctx });
    return this.data<T>('GET', path, res);
  }

  async post<T>(path: string, params: ProxmoxParams, ctx: ProviderContext): Promise<T> {
    return this.send<T>('POST', path, params, ctx);
  }

  async put<T>(path: string, params: ProxmoxParams, ctx: ProviderContext): Promise<T> {
    return this.send<T>('PUT', path, params, ctx);
  }

  private async send<T>(method: string, path: string, params: ProxmoxParams, ctx: ProviderContext): Promise<T> {
    const res = await this.http.request(method, `${API}${path}`, {
      headers: { ...this.headers(), 'content-type': 'application/x-www-form-urlencoded' },
      body: form(params),
      ctx,
    });
    return this.data<T>(method, path, res);
  }

  private data<T>(method: string, path: string, res: HttpResponse): T {
    if (res.status >= 400) {
      const body = (res.json ?? {}) as { message?: unknown; errors?: Record<string, unknown> };
      const reason = (typeof body.message === 'string' && body.message.trim()) || res.statusText.trim() || `HTTP ${res.status}`;
      const errors = body.errors && typeof body.errors === 'object' ? Object.entries(body.errors).map(([k, v]) => `${k}: ${String(v).trim()}`) : [];
      const detail = redact([reason, ...errors].join('; '), [this.endpoint.password]);
      const failure = proxmoxFailure(res.status, detail);
      const hint = failure === 'auth' ? ' (check the API token id, secret and its privileges)' : '';
      return this.throw(failure, `${this.http.baseUrl.host}: ${method} ${path} answered ${res.status}: ${detail}${hint}`);
    }
    if (!res.json || typeof res.json !== 'object' || !('data' in res.json)) {
      return this.throw('protocol', `${this.http.baseUrl.host}: ${method} ${path}: answer has no "data" member`);
    }
    return (res.json as { data: T }).data;
  }

  private throw(failure: ProviderFailure, message: string): never {
    throw new ProviderError(PROXMOX, failure, message);
  }

  /**
   * Waits for a task (UPID) to stop, within the call's timeout, and fails with the task's
   * exit status when it is not OK.
   */
  async waitForTask(node: string, upid: string, ctx: ProviderContext): Promise<void> {
    const deadline = Date.now() + ctx.timeoutMs;
    for (;;) {
      const task = await this.get<{ status?: string; exitstatus?: string }>(`/nodes/${encodeURIComponent(node)}/tasks/${encodeURIComponent(upid)}/status`, ctx);
      if (task.status === 'stopped') {
        if (task.exitstatus && task.exitstatus !== 'OK') {
          this.throw(proxmoxFailure(500, task.exitstatus), `${this.http.baseUrl.host}: task ${upid} failed: ${task.exitstatus}`);
        }
        return;
      }
      if (Date.now() + TASK_POLL_MS > deadline) this.throw('timeout', `${this.http.baseUrl.host}: task ${upid} still running after ${ctx.timeoutMs} ms`);
      await abortableSleep(TASK_POLL_MS, ctx.signal);
    }
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}
