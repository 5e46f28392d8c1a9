/**
 * The HTTP transport shared by the HTTP-speaking providers (Redfish, Proxmox, vSphere).
 *
 * One client per endpoint, with its own connection pool and its own TLS trust: verification
 * is on unless the endpoint explicitly opts out (`insecure`), and a per-endpoint CA bundle
 * (`caCert`) is trusted in addition to nothing else, so a BMC's self-signed certificate can
 * be pinned without turning verification off. Transport failures become classified
 * ProviderErrors here; HTTP statuses are left to the caller, because every API words its
 * errors differently (see `statusFailure` for the shared classification).
 */
import { Agent, request, type Dispatcher } from 'undici';
import { callDeadline, isTimeoutAbort } from './call-deadline.js';
import { onEndpoint } from './endpoint-origin.js';
import { ProviderError, type ProviderContext, type ProviderFailure } from './types.js';

export interface EndpointHttpOptions {
  /** Provider name used in every error message. */
  provider: string;
  /** Base URL of the endpoint, e.g. `https://10.0.0.5` or `https://pve:8006`. */
  baseUrl: string;
  caCert?: string;
  insecure?: boolean;
  /** Values that must never appear in an error message (passwords, tokens). */
  secrets?: () => Array<string | undefined>;
  /** Largest response body read, in bytes (default 8 MiB); protects against runaway answers. */
  maxBodyBytes?: number;
}

export interface HttpRequest {
  headers?: Record<string, string>;
  /** An object is sent as JSON; a string is sent as is (set content-type yourself). */
  body?: unknown;
  ctx: Pick<ProviderContext, 'signal' | 'timeoutMs'>;
}

export interface HttpResponse {
  status: number;
  /** The reason phrase (Proxmox puts its error message there). */
  statusText: string;
  headers: Record<string, string | undefined>;
  text: string;
  /** The body parsed as JSON, or undefined when it is empty or not JSON. */
  json: unknown;
}

const TLS_TRUST_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/** How an HTTP status should be treated, the same way for every HTTP provider. */
export function statusFailure(status: number): ProviderFailure {
  if (status === 401 || status === 403) return 'auth';
  if (status === 404) return 'not-found';
  if (status === 501) return 'unsupported';
  if (status === 408 || status === 429 || status >= 500) return 'transient';
  return 'protocol';
}

/** Replaces every secret in `text` with `***`. */
export function redact(text: string, secrets: Array<string | undefined>): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 3) out = out.split(s).join('***');
  return out;
}

/** The most specific error code in a cause chain (undici wraps socket errors). */
function errorCode(err: unknown): string | undefined {
  let found: string | undefined;
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') found = code;
    e = (e as { cause?: unknown }).cause;
  }
  return found;
}

export class EndpointHttpClient {
  readonly baseUrl: URL;
  private readonly options: EndpointHttpOptions;
  private readonly dispatcher: Dispatcher;

  constructor(options: EndpointHttpOptions) {
    this.options = options;
    try {
      this.baseUrl = new URL(options.baseUrl);
    } catch (cause) {
      throw new ProviderError(options.provider, 'protocol', `endpoint address '${options.baseUrl}' is not a URL`, cause);
    }
    this.dispatcher = new Agent({
      connect: {
        rejectUnauthorized: !options.insecure,
        ...(options.caCert ? { ca: options.caCert } : {}),
      },
      // Idle BMC connections are cheap to re-open and some BMCs drop them quickly.
      keepAliveTimeout: 4_000,
    });
  }

  /**
   * Absolute URL for a path or an absolute `@odata.id`-style link on this endpoint. A link to
   * any other origin is refused before a byte is sent: every request carries the appliance's
   * credentials, and neither a machine's reference nor a link in a device's answer may
   * redirect them (defence in depth behind the API's check of `provider.ref`).
   */
  url(pathOrUrl: string): URL {
    const target = onEndpoint(this.baseUrl, pathOrUrl);
    if (!target) {
      throw new ProviderError(
        this.options.provider,
        'protocol',
        `refusing to send a request to '${pathOrUrl.slice(0, 200)}': only the appliance's endpoint ${this.baseUrl.origin} is reached`,
      );
    }
    return target;
  }

  /**
   * Sends one request. Resolves with any HTTP status; rejects only on transport failures
   * (`unreachable`, `timeout`, TLS trust → `protocol`) and on cancellation.
   */
  async request(method: string, pathOrUrl: string, req: HttpRequest): Promise<HttpResponse> {
    const target = this.url(pathOrUrl);
    const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
    let body: string | undefined;
    if (typeof req.body === 'string') body = req.body;
    else if (req.body !== undefined) {
      body = JSON.stringify(req.body);
      headers['content-type'] ??= 'application/json';
    }
    const deadline = callDeadline(req.ctx);
    const where = `${method} ${target.pathname}`;
    try {
      const res = await request(target, {
        method: method as Dispatcher.HttpMethod,
        headers,
        ...(body !== undefined ? { body } : {}),
        dispatcher: this.dispatcher,
        signal: deadline.signal,
      });
      const text = await this.readBody(res.body);
      const flat: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(res.headers)) flat[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
      let json: unknown;
      if (text.trim() !== '') {
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
      }
      return { status: res.statusCode, statusText: res.statusText ?? '', headers: flat, text, json };
    } catch (err) {
      throw this.transportError(err, where, deadline.signal, req.ctx.timeoutMs);
    } finally {
      deadline.release();
    }
  }

  async close(): Promise<void> {
    await this.dispatcher.close().catch(() => undefined);
  }

  private async readBody(body: Dispatcher.ResponseData['body']): Promise<string> {
    const limit = this.options.maxBodyBytes ?? 8 * 1024 * 1024;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > limit) {
        body.destroy();
        throw new ProviderError(this.options.provider, 'protocol', `response larger than ${limit} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  private transportError(err: unknown, where: string, signal: AbortSignal, timeoutMs: number): ProviderError {
    if (err instanceof ProviderError) return err;
    const provider = this.options.provider;
    const host = this.baseUrl.host;
    if (isTimeoutAbort(signal)) return new ProviderError(provider, 'timeout', `${host}: ${where}: no answer within ${timeoutMs} ms`, err);
    if (signal.aborted) return new ProviderError(provider, 'timeout', `${host}: ${where}: cancelled`, signal.reason ?? err);
    const code = errorCode(err);
    const detail = redact(err instanceof Error ? err.message : String(err), this.options.secrets?.() ?? []);
    if (code && TLS_TRUST_CODES.has(code)) {
      return new ProviderError(
        provider,
        'protocol',
        `${host}: TLS certificate not trusted (${code}); give the endpoint its CA certificate (caCert) or, knowingly, set insecure`,
        err,
      );
    }
    if (code === 'UND_ERR_CONNECT_TIMEOUT') return new ProviderError(provider, 'timeout', `${host}: connection timed out`, err);
    if (code && UNREACHABLE_CODES.has(code)) return new ProviderError(provider, 'unreachable', `${host}: ${where}: ${code}`, err);
    return new ProviderError(provider, 'unreachable', `${host}: ${where}: ${detail}`, err);
  }
}
