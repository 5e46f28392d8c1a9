import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, createReadStream, createWriteStream, mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabDir, LabProvider } from '../src/lab/provider.js';
import { Vm } from '../src/lab/vm.js';
import { buildInstaller } from '../src/installer/index.js';
import { adoptSharedImage, e2eController, E2E_DIR, sharedImage, waitFor } from '../test/support/e2e.js';
import { freePort } from '../test/support/plinth-process.js';
import { machineInfo, record, startNginx, table, today } from './support.js';

/**
 * Deploy figures on a real lab VM (TCG): time per stage (power-on to agent, image write,
 * first boot); the agent's image write against `curl | dd` of the same raw image onto the same
 * kind of virtual disk in the same installer; 50 concurrent image downloads from the
 * controller against nginx serving the same file, as a ratio.
 */
const GiB = 2 ** 30;
const ctx = { timeoutMs: 10_000, log: { debug() {}, info() {}, warn() {} } };
const secs = (a?: string | null, b?: string | null) => (a && b ? (Date.parse(b) - Date.parse(a)) / 1000 : NaN);

async function stages() {
  const t = await e2eController({ providers: { timeout: '60s' } });
  t.controller.power.start();
  try {
    const image = await adoptSharedImage(t);
    const lab = new LabDir(join(t.config.dataDir, 'lab'));
    lab.write({
      name: 'bench-1',
      memoryMiB: 1024,
      smbios: { serial: 'BENCH-1' },
      disks: [{ path: join(lab.dir, 'disks', 'bench-1.qcow2'), sizeBytes: 6 * GiB }],
      nics: [{ mac: '52:54:00:be:00:01', bootUrl: t.bootUrl }],
      bootOrder: ['network', 'disk'],
    });
    await t.api('POST', '/api/v1/appliances', { name: 'lab', type: 'qemu', address: lab.dir });
    await t.api('POST', '/api/v1/appliances/lab/enlist', { inspect: true });
    const state = (s: string) => waitFor<any>(`bench-1 ${s}`, 20 * 60_000, async () => {
      const m = (await t.api('GET', '/api/v1/machines/bench-1')).json();
      if (m.state.endsWith('-failed')) throw new Error(JSON.stringify(m.lastError));
      return m.state === s ? m : undefined;
    });
    await state('available');
    const r = (await t.api('POST', '/api/v1/machines/bench-1/actions/deploy', { image })).json();
    await state('deployed');
    const run = (await t.api('GET', `/api/v1/runs/${r.run.id}`)).json();
    const step = (n: string) => run.steps.find((s: any) => s.name === n);
    const write = step('write-image');
    const rows = {
      powerOnToAgent: secs(run.createdAt, step('agent-hello').finishedAt),
      imageWrite: secs(write.startedAt, write.finishedAt),
      writeMBps: Math.round(Number((await t.api('GET', `/api/v1/images/${image}`)).json().sizeBytes) / 2 ** 20 / secs(write.startedAt, write.finishedAt)),
      firstBoot: secs(step('reboot').startedAt, step('first-boot').finishedAt),
      total: secs(run.createdAt, run.finishedAt),
      image,
    };
    await new LabProvider({ address: lab.dir }).power.setPowerState('bench-1', 'off', ctx);
    return { rows, t };
  } catch (e) {
    await t.close();
    throw e;
  }
}

/**
 * curl | dd of the same image inside the same installer, onto the same kind of disk, in MiB/s:
 * plain, and with every byte hashed by sha256sum on the way (as the agent checks each chunk).
 */
async function ddBaseline(imagePath: string): Promise<{ dd: number; ddSha256: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'plinth-bench-dd-'));
  const built = await buildInstaller({ dataDir: join(E2E_DIR, 'installer-dd'), agentBundle: new URL('./support/dd-agent.mjs', import.meta.url).pathname, log: () => undefined });
  type Result = { ok: boolean; seconds: { dd?: number; ddSha256?: number }; out: string };
  let result: Result | null = null;
  const server = createServer((req, res) => {
    if (req.url === '/image.raw') {
      res.writeHead(200, { 'content-length': statSync(imagePath).size });
      createReadStream(imagePath, { highWaterMark: 2 ** 20 }).pipe(res);
    } else {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => ((result = JSON.parse(body)), res.end('{}')));
    }
  });
  const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port)));
  const vm = new Vm(
    {
      name: 'dd',
      memoryMiB: 1024,
      disks: [{ path: join(dir, 'dd.qcow2'), sizeBytes: 6 * GiB }],
      nics: [{ mac: '52:54:00:dd:00:01' }],
      kernel: { kernel: built.kernel, initrd: built.initramfs, append: `plinth.url=http://10.0.2.2:${port} console=ttyS0` },
    },
    { dir },
  );
  await vm.start();
  await vm.waitForExit(20 * 60_000);
  server.close();
  const r = result as Result | null;
  if (!r?.ok || !r.seconds.dd || !r.seconds.ddSha256) throw new Error(`dd baseline failed: ${r?.out ?? vm.serialOutput().slice(-1500)}`);
  const mib = statSync(imagePath).size / 2 ** 20;
  return { dd: Math.round(mib / r.seconds.dd), ddSha256: Math.round(mib / r.seconds.ddSha256) };
}

/**
 * Aggregate MiB/s of 50 clients each downloading the whole image at once for DOWNLOAD_SECONDS (curl
 * counts the bytes of a download cut by its time limit; wrk counts only finished responses,
 * and none of 50 parallel multi-GiB downloads finishes in that time).
 */
/** `--quick`: the concurrent downloads only, no VM (a deploy under TCG takes minutes), for 5 s each instead of 15. */
const QUICK = process.argv.includes('--quick');
const DOWNLOAD_SECONDS = QUICK ? 5 : 15;

async function downloadRate(url: string, headers: string[] = []): Promise<number> {
  const seconds = DOWNLOAD_SECONDS;
  const one = () =>
    new Promise<number>((resolve, reject) => {
      const curl = spawn('curl', ['-s', '-o', '/dev/null', '--max-time', String(seconds), '-w', '%{size_download} %{http_code}', ...headers.flatMap((h) => ['-H', h]), url]);
      let out = '';
      curl.stdout.on('data', (d: Buffer) => (out += d.toString()));
      curl.on('close', () => {
        const [bytes, code] = out.trim().split(' ');
        if (code === '200') resolve(Number(bytes));
        else reject(new Error(`${url}: HTTP ${code}`));
      });
    });
  const bytes = await Promise.all(Array.from({ length: 50 }, one));
  return bytes.reduce((a, b) => a + b, 0) / 2 ** 20 / seconds;
}

async function downloads(t: Awaited<ReturnType<typeof e2eController>>, imagePath: string, image: string) {
  // A deploy run that streams this image: its token is what the agent would send.
  await t.api('POST', '/api/v1/machines', { name: 'dl-1', identity: { macs: ['52:54:00:be:00:99'] } });
  const db = t.controller.services.store.db;
  await db.updateTable('machines').set({ state: 'available' }).where('name', '=', 'dl-1').execute();
  await t.api('POST', '/api/v1/machines/dl-1/actions/deploy', { image });
  const script = await (await fetch(`${t.url}/boot/machine.ipxe?mac=52:54:00:be:00:99`)).text();
  const token = /plinth\.token=(\S+)/.exec(script)![1]!;
  const controller = await downloadRate(`${t.url}/agent/v1/images/${image}`, [`Authorization: Bearer ${token}`]);
  const ngDir = mkdtempSync(join(tmpdir(), 'plinth-bench-nginx-'));
  mkdirSync(join(ngDir, 'www'));
  chmodSync(ngDir, 0o755);
  execFileSync('ln', [imagePath, join(ngDir, 'www', 'image.raw')]);
  const port = await freePort();
  const stopNginx = await startNginx({ root: join(ngDir, 'www'), port, probe: 'image.raw' });
  const ngx = await downloadRate(`http://127.0.0.1:${port}/image.raw`);
  stopNginx();
  return { controller: Math.round(controller), nginx: Math.round(ngx) };
}

/**
 * The quick run's image: 1 GiB of random bytes uploaded to the store, not the e2e Debian image
 * (whose build, when it is not cached, takes ten minutes of the quick run's ten): downloads
 * read bytes, whatever they hold, and 50 clients for DOWNLOAD_SECONDS finish none of it.
 */
async function syntheticImage(t: Awaited<ReturnType<typeof e2eController>>): Promise<{ image: string; path: string }> {
  const path = join(mkdtempSync(join(tmpdir(), 'plinth-bench-image-')), 'image.raw');
  const out = createWriteStream(path);
  for (let i = 0; i < 1024; i++) if (!out.write(randomBytes(2 ** 20))) await once(out, 'drain');
  await new Promise((r) => out.end(r));
  const image = await t.controller.services.images.upload({ name: 'bench-quick', kind: 'disk', body: createReadStream(path), format: 'raw' });
  return { image: image.name, path };
}

export async function run(): Promise<string> {
  if (QUICK) {
    const t = await e2eController({});
    try {
      const { image, path: imagePath } = await syntheticImage(t);
      const dl = await downloads(t, imagePath, image);
      const md = `# Deploy — ${today()} (quick)\n\n${machineInfo()}. The concurrent image downloads alone (no VM): controller on SQLite on the same machine, then nginx serving the same ${(statSync(imagePath).size / GiB).toFixed(0)} GiB image (random bytes, uploaded to the image store).\n\n` +
        table(
          [
            { measure: `50 concurrent image downloads for ${DOWNLOAD_SECONDS} s (curl): controller`, value: `${dl.controller} MiB/s` },
            { measure: '50 concurrent image downloads: nginx, same file', value: `${dl.nginx} MiB/s (controller / nginx: ${Math.round((dl.controller / dl.nginx) * 100)}%)` },
          ],
          ['measure', 'value'],
        );
      return record('deploy-quick', md, { date: today(), machine: machineInfo(), downloads: dl });
    } finally {
      await t.close();
    }
  }
  const { dir, name } = await sharedImage();
  const imagePath = join(dir, `${name}.raw`);
  const { rows, t } = await stages();
  let dl: { controller: number; nginx: number };
  try {
    dl = await downloads(t, imagePath, rows.image);
  } finally {
    await t.close();
  }
  const dd = await ddBaseline(imagePath);
  const md = `# Deploy — ${today()}\n\n${machineInfo()}. One lab VM (QEMU TCG, 1 vCPU, 1 GiB, virtio disk on qcow2), the ${(statSync(imagePath).size / GiB).toFixed(0)} GiB image from \`plinth image build\`, controller on SQLite on the same machine.\n\n` +
    table(
      [
        { measure: 'power-on to agent hello', value: `${rows.powerOnToAgent.toFixed(1)} s` },
        { measure: 'image write (HTTP download, sha256, write, fsync)', value: `${rows.imageWrite.toFixed(1)} s (${rows.writeMBps} MiB/s)` },
        { measure: 'first boot (reboot to the installed OS reporting in)', value: `${rows.firstBoot.toFixed(1)} s` },
        { measure: 'whole deploy (action to deployed)', value: `${rows.total.toFixed(1)} s` },
        { measure: '`curl \\| dd bs=4M oflag=direct` of the same image, same VM kind', value: `${dd.dd} MiB/s (agent / dd: ${Math.round((rows.writeMBps / dd.dd) * 100)}%)` },
        { measure: '`curl \\| tee >(sha256sum) \\| dd bs=4M oflag=direct`, the same with every byte hashed', value: `${dd.ddSha256} MiB/s (agent / this: ${Math.round((rows.writeMBps / dd.ddSha256) * 100)}%)` },
        { measure: `50 concurrent image downloads for ${DOWNLOAD_SECONDS} s (curl): controller`, value: `${dl.controller} MiB/s` },
        { measure: '50 concurrent image downloads: nginx, same file', value: `${dl.nginx} MiB/s (controller / nginx: ${Math.round((dl.controller / dl.nginx) * 100)}%)` },
      ],
      ['measure', 'value'],
    );
  return record('deploy', md, { date: today(), machine: machineInfo(), ...rows, ddMBps: dd.dd, ddSha256MBps: dd.ddSha256, downloads: dl });
}
