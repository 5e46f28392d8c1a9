import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'plinth.js');

/** Builds dist/ when it is missing or older than the sources' newest file (tests may run before `npm run build`). */
export function ensureBuilt(): void {
  const entry = join(ROOT, 'dist', 'cli', 'main.js');
  if (existsSync(entry) && statSync(entry).mtimeMs > newestSource()) return;
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
}

function newestSource(): number {
  const out = execFileSync('find', [join(ROOT, 'src'), '-name', '*.ts', '-newer', join(ROOT, 'dist', 'cli', 'main.js')], { encoding: 'utf8' });
  return out.trim() ? Infinity : 0;
}

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  logs: Record<string, unknown>[];
  waitForLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `plinth serve` as a real process and waits until it listens. */
/** `readyTimeoutMs`: how long it may take to listen (a loaded machine starts Node slowly); it is killed if it does not. */
export async function startServe(env: Record<string, string>, args: string[] = [], opts: { prefix?: string[]; readyTimeoutMs?: number; nodeArgs?: string[] } = {}): Promise<ServeProcess> {
  // `prefix`: a wrapper that execs the controller (`nsenter --net=/run/netns/NS --`); it is then reached only from inside.
  // `nodeArgs`: Node's own flags (`--cpu-prof`, which NODE_OPTIONS does not take).
  const argv = [...(opts.prefix ?? []), process.execPath, ...(opts.nodeArgs ?? []), BIN, 'serve', ...args];
  const child = spawn(argv[0]!, argv.slice(1), {
    env: { PATH: process.env.PATH!, HOME: process.env.HOME!, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let buf = '';
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = { msg: line, unparsed: true };
      }
      logs.push(parsed);
      for (const w of [...waiters]) if (w.pred(parsed)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(parsed));
    }
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  // A bound on failure only: a controller starting on a busy two-core machine can take tens of seconds.
  const waitForLog = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 90_000) => {
    const found = logs.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`log line not seen; stderr: ${stderr}\nlogs: ${JSON.stringify(logs.slice(-5))}`)), timeoutMs);
      waiters.push({ pred, resolve: (l) => (clearTimeout(t), resolve(l)) });
      void exited.then(() => reject(new Error(`plinth serve exited; stderr: ${stderr}`)));
    });
  };
  // With a fixed port the controller is ready when /healthz answers (quiet log levels print no address).
  const port = /:(\d+)$/.exec(env.PLINTH_LISTEN ?? '')?.[1];
  let url: string;
  if (port && port !== '0' && !opts.prefix) {
    url = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      const ok = await fetch(`${url}/healthz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (child.exitCode !== null || i > 300) throw new Error(`plinth serve did not come up; stderr: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } else {
    try {
      url = String((await waitForLog((l) => l.msg === 'controller listening', opts.readyTimeoutMs)).address);
    } catch (e) {
      // Not left behind to hold the port; SIGTERM, so that it stops its dnsmasq too.
      child.kill('SIGTERM');
      throw e;
    }
  }
  return {
    child,
    url,
    logs,
    waitForLog,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}
