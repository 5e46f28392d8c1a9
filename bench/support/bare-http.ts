import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { bladeFacts, bootAndReport, fetchHttp } from '../../test/integration/matching-support.js';
import { cpuSeconds } from '../support.js';

/**
 * The other floor under an inspection: its three requests (boot script, hello, facts) answered
 * by a bare Node server (node:http, the body read and parsed with JSON.parse, a fixed answer),
 * no framework, no validation, no database. The same client and concurrency as the matching
 * bench's. Returns the server process's CPU-milliseconds per inspection.
 */
export async function bareHttpCpuMs(count: number, concurrency: number): Promise<number> {
  const server = `
    const http = require('node:http');
    const script = '#!ipxe\\nkernel /boot/installer/vmlinuz plinth.token=t0k3n plinth.run=r1 console=ttyS0\\ninitrd /boot/installer/initrd.img\\nboot\\n';
    http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        if (req.method === 'GET') { res.setHeader('content-type', 'text/plain'); res.end(script); return; }
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(req.url === '/agent/v1/hello' ? { machine: { id: 'm', name: 'n' }, run: { id: 'r1', kind: 'inspect', params: {} }, heartbeatSeconds: 30, got: typeof body } : { next: 'poweroff' }));
      });
    }).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`;
  const child = spawn(process.execPath, ['-e', server], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    const http = fetchHttp(`http://127.0.0.1:${line.toString().trim()}`);
    let next = 0;
    const run = async (until: number) => {
      const worker = async () => {
        for (let i = next++; i < until; i = next++) await bootAndReport(http, bladeFacts(2_000_000 + i));
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
    };
    await run(Math.min(200, count));
    const c0 = cpuSeconds(child.pid!);
    const first = next;
    await run(first + count);
    return Math.round(((cpuSeconds(child.pid!) - c0) * 1000 * 100) / count) / 100;
  } finally {
    child.kill();
  }
}
