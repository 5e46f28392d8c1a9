import { createConnection, type Socket } from 'node:net';

/**
 * A minimal QEMU Machine Protocol client over a unix socket: line-delimited JSON, one
 * command in flight at a time (QMP answers in order). Asynchronous events are collected.
 */
export class QmpClient {
  private socket: Socket | null = null;
  private buffer = '';
  private pending: { resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  private greeted!: Promise<void>;
  readonly events: { event: string; data?: unknown }[] = [];

  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const client = new QmpClient();
    await client.open(path, timeoutMs);
    await client.execute('qmp_capabilities');
    return client;
  }

  private open(path: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`QMP ${path}: no greeting within ${timeoutMs} ms`));
      }, timeoutMs);
      let greet: () => void;
      this.greeted = new Promise<void>((r) => (greet = r));
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        this.buffer += chunk;
        let nl: number;
        while ((nl = this.buffer.indexOf('\n')) >= 0) {
          const line = this.buffer.slice(0, nl).trim();
          this.buffer = this.buffer.slice(nl + 1);
          if (!line) continue;
          const msg = JSON.parse(line) as Record<string, unknown>;
          if ('QMP' in msg) {
            clearTimeout(timer);
            greet();
            resolve();
          } else if ('event' in msg) {
            this.events.push({ event: String(msg.event), data: msg.data });
          } else if ('return' in msg) {
            this.pending.shift()?.resolve(msg.return);
          } else if ('error' in msg) {
            const err = msg.error as { class?: string; desc?: string };
            this.pending.shift()?.reject(new Error(`QMP error ${err.class}: ${err.desc}`));
          }
        }
      });
      const fail = (e: Error) => {
        clearTimeout(timer);
        for (const p of this.pending.splice(0)) p.reject(e);
        reject(e);
      };
      socket.on('error', fail);
      socket.on('close', () => fail(new Error('QMP connection closed')));
      this.socket = socket;
    });
  }

  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    await this.greeted;
    if (!this.socket || this.socket.destroyed) throw new Error('QMP connection closed');
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.socket!.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }
}
