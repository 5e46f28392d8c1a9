import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import { ApiClient, type CoreClientOptions } from './client-core.js';

export * from './client-core.js';

export interface ClientOptions extends CoreClientOptions {
  /** PEM certificates of a private CA to trust besides the system's (HTTPS controllers). */
  ca?: string | null;
}

/** The typed client in Node (the CLI, tests): the browser-safe ApiClient, plus a private CA to trust. */
export class PlinthClient extends ApiClient {
  private readonly dispatcher: Dispatcher | null;

  constructor(opts: ClientOptions) {
    super(opts);
    // The private CA is added to the public roots, not put in their place: a controller
    // behind a publicly trusted front keeps working with the same settings.
    this.dispatcher = opts.ca ? new Agent({ connect: { ca: [...rootCertificates, opts.ca] } }) : null;
  }

  override fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    return fetch(url, (this.dispatcher ? { ...init, dispatcher: this.dispatcher } : init) as RequestInit);
  }

  /** Closes the connections kept for a private CA (the global pool needs nothing). */
  async close(): Promise<void> {
    await this.dispatcher?.close();
  }
}
