/**
 * The agent's side of the agent API: JSON over HTTP with the run token, retrying network
 * failures and 5xx answers with a growing pause (the controller may be restarting), never
 * retrying a 4xx (the answer will not change).
 */
export class AgentHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'AgentHttpError';
  }
}

export interface AgentClientOptions {
  url: string;
  token: string;
  fetch?: typeof fetch;
  /** How long one request may take. */
  timeoutMs?: number;
  /** Pauses between retries (ms); the last one repeats until `maxAttempts`. */
  backoffMs?: number[];
  maxAttempts?: number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * HTTPS with a private CA needs nothing here: the installer's /init sets NODE_EXTRA_CA_CERTS
 * to the bundle `plinth installer build --ca-bundle` put in the initramfs, which Node's fetch
 * (this client, and the image download) trusts besides its public roots.
 */
export class AgentClient {
  private readonly o: Required<AgentClientOptions>;
  constructor(o: AgentClientOptions) {
    this.o = {
      fetch: globalThis.fetch,
      timeoutMs: 30_000,
      backoffMs: [1000, 2000, 4000, 8000, 15000],
      maxAttempts: 40,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      ...o,
    };
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  private async request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    let lastError: unknown;
    for (let attempt = 0; attempt < this.o.maxAttempts; attempt++) {
      try {
        const res = await this.o.fetch(`${this.o.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${this.o.token}`, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
          ...(method === 'POST' ? { body: JSON.stringify(body) } : {}),
          signal: AbortSignal.timeout(this.o.timeoutMs),
        });
        const text = await res.text();
        if (res.ok) return (text ? JSON.parse(text) : {}) as T;
        const message = (() => {
          try {
            return (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
          } catch {
            return text;
          }
        })();
        if (res.status < 500) throw new AgentHttpError(res.status, `${path}: HTTP ${res.status}: ${message}`);
        lastError = new AgentHttpError(res.status, `${path}: HTTP ${res.status}: ${message}`);
      } catch (e) {
        if (e instanceof AgentHttpError && e.status < 500) throw e;
        lastError = e;
      }
      await this.o.sleep(this.o.backoffMs[Math.min(attempt, this.o.backoffMs.length - 1)]!);
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }
}
