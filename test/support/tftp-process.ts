import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/**
 * A TFTP server in its own process, for tests whose question is "does the process survive?":
 * an exception thrown out of a socket handler kills the process that runs it, which a test
 * can only see from outside. The child prints `{"port":N}` once listening, and exits when
 * its stdin closes, so it never outlives the test that started it.
 */
export interface TftpProcess {
  port: number;
  child: ChildProcess;
  /** Everything the child wrote to stderr (an uncaught exception's stack, if it died). */
  stderr(): string;
  exited(): boolean;
  /** Settles like `promise`, or rejects with the child's stderr if the child dies first. */
  unlessDead<T>(promise: Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

const MAIN = fileURLToPath(new URL('./tftp-main.ts', import.meta.url));

export async function startTftpProcess(options: { root: string; host?: string; maxTransfers?: number; transferTimeoutMs?: number; timeoutMs?: number }): Promise<TftpProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, JSON.stringify({ host: '127.0.0.1', port: 0, ...options })], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  let exited = false;
  const exit = once(child, 'exit').then(() => (exited = true));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = /^\{"port":(\d+)\}$/m.exec(out);
      if (line) resolve(Number(line[1]));
    });
    void exit.then(() => reject(new Error(`TFTP child exited before listening: ${err}`)));
  });
  return {
    port,
    child,
    stderr: () => err,
    exited: () => exited,
    unlessDead: <T>(promise: Promise<T>) =>
      Promise.race([promise, exit.then((): never => { throw new Error(`the TFTP server process died: ${err}`); })]),
    async stop() {
      if (!exited) {
        child.stdin!.end();
        await exit;
      }
    },
  };
}

/** A UDP client socket on the loopback, closed by the caller. */
export async function udpClient(host = '127.0.0.1'): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, host, () => r()));
  return s;
}

/** The next datagram the socket receives, with its sender. */
export function nextMessage(s: Socket): Promise<{ msg: Buffer; address: string; port: number }> {
  return new Promise((resolve) => s.once('message', (msg, r) => resolve({ msg, address: r.address, port: r.port })));
}

/** An RRQ for `file` in octet mode with the given options. */
export function readRequest(file: string, options: Record<string, string> = {}): Buffer {
  const parts = [file, 'octet', ...Object.entries(options).flat()].map((p) => `${p}\0`).join('');
  return Buffer.concat([Buffer.from([0, 1]), Buffer.from(parts, 'ascii')]);
}
