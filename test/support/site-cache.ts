import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { BIN } from './plinth-process.js';

/**
 * A TCP relay in front of the controller: counts the bytes the controller sends through it
 * (its egress to the site, measured on the wire, not reported by anyone), and can cut the
 * connection carrying a download (the last request on it names `path`) after N bytes of its
 * answer (a link that drops mid-file), and again after the next N…
 */
export async function countingRelay(target: URL) {
  let sent = 0;
  let cut: { path: string; budgets: number[] } | null = null;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    let lastPath = '';
    upstream.on('data', (d: Buffer) => {
      if (cut && lastPath.includes(cut.path)) {
        if (d.length > cut.budgets[0]!) {
          const part = d.subarray(0, cut.budgets.shift()!);
          if (cut.budgets.length === 0) cut = null;
          sent += part.length;
          client.end(part);
          client.destroySoon();
          upstream.destroy();
          return;
        }
        cut.budgets[0]! -= d.length;
      }
      sent += d.length;
      if (!client.write(d)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
    client.on('data', (d: Buffer) => {
      const request = /^(?:GET|HEAD|POST) (\S+) HTTP\//m.exec(d.toString('latin1'));
      if (request) lastPath = request[1]!;
      upstream.write(d);
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    get sent() {
      return sent;
    },
    /** Cuts the download of `path` after `bytes[0]` bytes of its answer, the next one after `bytes[1]`… */
    cutAfter(path: string, ...bytes: number[]) {
      cut = { path, budgets: bytes };
    },
    close: () => new Promise((r) => (sockets.forEach((c) => c.destroy()), server.close(r))),
  };
}

/** `plinth manager` with a site cache, as a real process; its JSON log lines kept. */
export async function startCacheManager(o: { controller: string; token: string; site: string; dir: string; size: string; port: number }) {
  const child: ChildProcess = spawn(
    process.execPath,
    [BIN, 'manager', '--controller', o.controller, '--site', o.site, '--cache-dir', o.dir, '--cache-size', o.size, '--listen', `127.0.0.1:${o.port}`, '--parallel', '2'],
    { env: { PATH: process.env.PATH!, HOME: process.env.HOME!, PLINTH_TOKEN: o.token }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  return {
    url: `http://127.0.0.1:${o.port}`,
    output: () => out,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

