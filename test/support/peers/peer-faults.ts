/**
 * Faults the HTTP test services can inject, shared so that every HTTP provider is exercised
 * the same way: added latency, the next N requests failing with a status (then recovery),
 * and a service that accepts connections but never answers (a hung BMC). Every request is
 * recorded so tests can count what a client really sent. Two switches make a service lie
 * instead of fail, each service in its own way: `ignorePower` (power actions answered as
 * accepted and not carried out) and `alterBoot` (boot settings answered as accepted and kept
 * other than asked) — the conformance suite's `misbehave` hooks; the Redfish service adds
 * `ignoreMedia` (virtual media inserts answered as accepted, the slot left empty).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  /** How the request authenticated itself, as the service saw it. */
  auth: string;
}

export class PeerFaults {
  readonly requests: RecordedRequest[] = [];
  private latencyMs = 0;
  private failuresLeft = 0;
  private failureStatus = 503;
  private hanging = false;
  private readonly hung = new Set<ServerResponse>();
  /** While true, power actions are answered as accepted and not carried out. */
  powerIgnored = false;
  /** While true, boot settings are answered as accepted and kept other than asked. */
  bootAltered = false;
  /** While true, virtual media inserts are answered as accepted and the slot stays as it was. */
  mediaIgnored = false;

  ignoreMedia(on: boolean): void {
    this.mediaIgnored = on;
  }

  ignorePower(on: boolean): void {
    this.powerIgnored = on;
  }

  alterBoot(on: boolean): void {
    this.bootAltered = on;
  }

  /** The next `count` requests answer `status` (default 503), then the service recovers. */
  failNext(count: number, status = 503): void {
    this.failuresLeft = count;
    this.failureStatus = status;
  }

  setLatency(ms: number): void {
    this.latencyMs = ms;
  }

  /** While on, requests are accepted and never answered. */
  hang(on: boolean): void {
    this.hanging = on;
    if (!on) {
      for (const res of this.hung) res.destroy();
      this.hung.clear();
    }
  }

  count(filter?: (r: RecordedRequest) => boolean): number {
    return filter ? this.requests.filter(filter).length : this.requests.length;
  }

  /**
   * Applies the faults to one request. Returns true when the request was consumed (failed
   * or hung) and the service must not answer it itself.
   */
  async apply(res: ServerResponse, errorBody: (status: number) => unknown): Promise<boolean> {
    if (this.hanging) {
      this.hung.add(res);
      return true;
    }
    if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      const body = JSON.stringify(errorBody(this.failureStatus));
      res.writeHead(this.failureStatus, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return true;
    }
    return false;
  }
}

/** Listens on 127.0.0.1 with a port the kernel picks; resolves with that port. */
export function listenOnLoopback(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** Closes a server, cutting kept-alive and hung connections so tests never wait for them. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
