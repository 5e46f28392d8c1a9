import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A tiny HTTP server on 127.0.0.1 standing in for the controller in installer boot tests:
 * it records every JSON body POSTed to /hello. A QEMU guest on user-mode networking
 * reaches it as http://10.0.2.2:PORT.
 */
export interface ReceivedReport<T> {
  body: T;
  receivedAt: number;
}

export class InstallerReportServer<T> {
  readonly reports: ReceivedReport<T>[] = [];
  private readonly server: Server;
  private waiters: (() => void)[] = [];

  private constructor(server: Server) {
    this.server = server;
  }

  static async start<T>(): Promise<InstallerReportServer<T>> {
    let instance: InstallerReportServer<T> | null = null;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method !== 'POST' || req.url !== '/hello') {
          res.writeHead(404).end();
          return;
        }
        try {
          instance!.reports.push({ body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as T, receivedAt: Date.now() });
          res.writeHead(204).end();
        } catch {
          res.writeHead(400).end();
        }
        for (const wake of instance!.waiters.splice(0)) wake();
      });
    });
    instance = new InstallerReportServer<T>(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return instance;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Resolves with the first report matching `predicate`; rejects after `timeoutMs` with `describe()` appended. */
  async waitFor(predicate: (report: T) => boolean, timeoutMs: number, describe: () => string = () => ''): Promise<ReceivedReport<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.reports.find((r) => predicate(r.body));
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching report within ${timeoutMs} ms (${this.reports.length} received)\n${describe()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
