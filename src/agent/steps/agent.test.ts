import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Facts } from '../../core/facts.js';
import { runAgent } from '../agent.js';
import { buildTestImage, isZero, LoopDevices, MiB, must, readDevice, sh, type TestImage } from './test-fixtures.js';

const TOKEN = 'plrun_agent_test';

interface Call {
  path: string;
  body: Record<string, unknown>;
}

/**
 * A stand-in controller speaking the agent API for deploy and wipe runs (the real one gains
 * /agent/v1/steps and /agent/v1/boot-local separately): it hands out one run, serves the
 * image, and records every call in order.
 */
async function fakeController(run: { kind: string; params: unknown }, imagePath: string | null, answers: { steps?: (name: string, body: Record<string, unknown>) => Record<string, unknown>; bootLocal?: Record<string, unknown> } = {}) {
  const calls: Call[] = [];
  const image = imagePath ? readFileSync(imagePath) : null;
  const server: Server = createServer((req, res) => {
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'unauthorized', message: 'bad token' } }));
      return;
    }
    if (req.method === 'GET' && req.url === '/images/test.raw' && image) {
      res.writeHead(200, { 'content-length': image.length, etag: '"t1"' }).end(image);
      return;
    }
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const path = req.url ?? '';
      const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      calls.push({ path, body });
      const json = (v: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(v));
      if (path === '/agent/v1/hello') json({ machine: { id: 'm-1', name: 'node-7' }, run: { id: 'r-1', ...run }, heartbeatSeconds: 15 });
      else if (path === '/agent/v1/log') json({ stored: (body['lines'] as unknown[]).length });
      else if (path === '/agent/v1/heartbeat') json({ next: 'wait' });
      else if (path.startsWith('/agent/v1/steps/')) json(answers.steps?.(path.slice('/agent/v1/steps/'.length), body) ?? {});
      else if (path === '/agent/v1/boot-local') json(answers.bootLocal ?? { next: 'reboot' });
      else if (path === '/agent/v1/fail') json({ next: 'poweroff' });
      else if (path.startsWith('/agent/v1/scripts/')) json({});
      else res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    calls,
    /** The calls that are neither log shipping nor heartbeats, as "path status". */
    flow: () => calls.filter((c) => c.path !== '/agent/v1/log' && c.path !== '/agent/v1/heartbeat').map((c) => (c.body['status'] ? `${c.path} ${String(c.body['status'])}` : c.path)),
    logLines: () => calls.filter((c) => c.path === '/agent/v1/log').flatMap((c) => (c.body['lines'] as { line: string }[]).map((l) => l.line)),
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

function factsWith(disks: { name: string; sizeBytes: number }[]): Facts {
  return {
    system: { uuid: null, serial: 'AGENT-STEPS', assetTag: null, manufacturer: 'QEMU', productName: 'Standard PC' },
    cpu: { architecture: 'x86_64', model: null, sockets: 1, cores: 1, threads: 1 },
    memory: { totalBytes: 2 ** 30, source: 'meminfo' },
    disks: disks.map((d) => ({ ...d, model: null, serial: null, wwn: null, rotational: false })),
    nics: [],
    firmware: { bootMode: 'uefi', vendor: null, version: null },
    bmc: null,
    hw: [],
  };
}

describe('the agent runs deploy and wipe runs', () => {
  const loops = new LoopDevices();
  let image: TestImage;
  beforeAll(async () => {
    image = await buildTestImage(loops);
  });
  afterAll(async () => loops.detachAll());

  const seed = { userData: '#cloud-config\n', metaData: 'instance-id: r-1\n', networkConfig: 'version: 2\n' };
  const deployParams = () => ({ image: { url: '/images/test.raw', sha256: image.sha256, sizeBytes: image.sizeBytes, format: 'raw' }, seed });

  async function agent(url: string, disks: { name: string; sizeBytes: number }[]) {
    const powered: string[] = [];
    const outcome = await runAgent({
      config: { url, runId: 'r-1', token: TOKEN, debug: false },
      version: 'test',
      inspect: async (log) => {
        log('inspection: (stand-in)');
        return factsWith(disks);
      },
      power: { poweroff: async () => void powered.push('poweroff'), reboot: async () => void powered.push('reboot') },
      console: () => undefined,
      sleep: async () => undefined,
    });
    return { outcome, powered };
  }

  it('deploys: reports every step, asks to boot from disk, and reboots as the controller says', async () => {
    const target = await loops.attach(64 * MiB);
    const controller = await fakeController({ kind: 'deploy', params: deployParams() }, image.path);
    try {
      const { outcome, powered } = await agent(controller.url, [{ name: target.name, sizeBytes: 64 * MiB }]);
      expect(outcome).toEqual({ result: 'done', next: 'reboot' });
      expect(powered).toEqual(['reboot']);
      expect(controller.flow()).toEqual([
        '/agent/v1/hello',
        '/agent/v1/steps/select-disk running',
        '/agent/v1/steps/select-disk succeeded',
        '/agent/v1/steps/write-image running',
        '/agent/v1/steps/write-image succeeded',
        '/agent/v1/steps/grow-root running',
        '/agent/v1/steps/grow-root succeeded',
        '/agent/v1/steps/configure running',
        '/agent/v1/steps/configure succeeded',
        '/agent/v1/boot-local',
      ]);
      const writeDone = controller.calls.find((c) => c.path === '/agent/v1/steps/write-image' && c.body['status'] === 'succeeded')!;
      expect(writeDone.body).toMatchObject({ message: expect.stringMatching(/sha256 verified$/), details: { bytes: image.sizeBytes, sha256: image.sha256 } });
      expect(controller.logLines()).toContain('inspection: (stand-in)');
      expect(controller.logLines().some((l) => /^write-image: wrote 32\.0 MiB/.test(l))).toBe(true);
      expect(controller.logLines().at(-1)).toBe('done; next: reboot');
      expect(await must('debugfs', ['-R', 'cat /var/lib/cloud/seed/nocloud/meta-data', `${target.device}p3`])).toBe(seed.metaData);
    } finally {
      await controller.close();
    }
  });

  it('wipes every disk it finds and ends as the last step answer says', async () => {
    const a = await loops.attach(40 * MiB, image.path);
    const b = await loops.attach(40 * MiB, image.path);
    const controller = await fakeController({ kind: 'wipe', params: { mode: 'quick' } }, null, { steps: (name, body) => (name === 'erase' && body['status'] === 'succeeded' ? { next: 'wait' } : {}) });
    try {
      const { outcome, powered } = await agent(controller.url, [
        { name: a.name, sizeBytes: 40 * MiB },
        { name: b.name, sizeBytes: 40 * MiB },
      ]);
      expect(outcome).toEqual({ result: 'done', next: 'wait' });
      expect(powered).toEqual([]);
      expect(controller.flow()).toEqual(['/agent/v1/hello', '/agent/v1/steps/erase running', '/agent/v1/steps/erase succeeded']);
      for (const d of [a, b]) {
        expect((await sh('blkid', ['--probe', d.device])).code).toBe(2);
        expect(isZero(await readDevice(loops, d.device, 0, 40 * MiB))).toBe(true);
      }
    } finally {
      await controller.close();
    }
  });

  it('powers off after a wipe when the controller says nothing more', async () => {
    const a = await loops.attach(40 * MiB);
    const controller = await fakeController({ kind: 'wipe', params: { mode: 'full' } }, null);
    try {
      const { outcome, powered } = await agent(controller.url, [{ name: a.name, sizeBytes: 40 * MiB }]);
      expect(outcome).toEqual({ result: 'done', next: 'poweroff' });
      expect(powered).toEqual(['poweroff']);
    } finally {
      await controller.close();
    }
  });

  it('reports a failed step with its code and the step as the stage', async () => {
    const target = await loops.attach(64 * MiB);
    const params = deployParams();
    params.image.sha256 = '0'.repeat(64);
    const controller = await fakeController({ kind: 'deploy', params }, image.path);
    try {
      const { outcome, powered } = await agent(controller.url, [{ name: target.name, sizeBytes: 64 * MiB }]);
      expect(outcome.result).toBe('failed');
      expect(powered).toEqual([]);
      expect(controller.flow().slice(-3)).toEqual(['/agent/v1/steps/write-image running', '/agent/v1/steps/write-image failed', '/agent/v1/fail']);
      const fail = controller.calls.at(-1)!.body;
      expect(fail).toEqual({ code: 'image', stage: 'write-image', message: expect.stringMatching(/^checksum mismatch: expected sha256 0{64}, got [0-9a-f]{64}/) });
      expect(isZero(await readDevice(loops, target.device, 0, MiB))).toBe(true);
    } finally {
      await controller.close();
    }
  });

  it("runs a deploy's configure scripts before any disk step, and a failing one fails the deploy naming it, the disk untouched", async () => {
    const target = await loops.attach(64 * MiB);
    const scripts = [
      { name: 'raid', content: '#!/bin/sh\necho "configuring $PLINTH_VAR_MACHINE_NAME in rack $PLINTH_VAR_MACHINE_TAGS_RACK"\necho layout > "$PLINTH_OUTPUT_DIR/plan.txt"\n', timeoutSeconds: 60 },
      { name: 'fw', content: '#!/bin/sh\necho "no firmware for $(jq -r .machine.serial "$PLINTH_VARIABLES" 2>/dev/null || echo ?)"\nexit 3\n', timeoutSeconds: 60 },
      { name: 'never', content: '#!/bin/sh\nexit 0\n', timeoutSeconds: 60 },
    ];
    const variables = { machine: { name: 'node-7', serial: 'SER-7', tags: { rack: 'r9' } } };
    const controller = await fakeController({ kind: 'deploy', params: { ...deployParams(), scripts, variables } }, image.path);
    try {
      const { outcome, powered } = await agent(controller.url, [{ name: target.name, sizeBytes: 64 * MiB }]);
      expect(outcome).toEqual({ result: 'failed', message: expect.stringMatching(/^script fw exited 3: no firmware for /) });
      expect(powered).toEqual([]);
      expect(controller.flow()).toEqual(['/agent/v1/hello', '/agent/v1/scripts/raid', '/agent/v1/scripts/fw', '/agent/v1/fail']);
      const raid = controller.calls.find((c) => c.path === '/agent/v1/scripts/raid')!.body;
      expect(raid).toMatchObject({ exitCode: 0, output: 'configuring node-7 in rack r9\n', files: [{ name: 'plan.txt', content: Buffer.from('layout\n').toString('base64') }] });
      expect(controller.calls.at(-1)!.body).toEqual({ code: 'script', stage: 'script-fw', message: expect.stringMatching(/^script fw exited 3: no firmware for /) });
      expect(isZero(await readDevice(loops, target.device, 0, 64 * MiB))).toBe(true);
    } finally {
      await controller.close();
    }
  });

  it("fails an image deploy whose configure script computed a disk layout (an image brings its own), the disk untouched", async () => {
    const target = await loops.attach(64 * MiB);
    const layout = { disks: [{ partitions: [{ id: 'root', use: 'fs', fs: 'ext4', mount: '/' }] }] };
    const scripts = [{ name: 'layout', content: `#!/bin/sh\necho '${JSON.stringify(layout)}' > "$PLINTH_OUTPUT_DIR/disk-layout.json"\n`, timeoutSeconds: 60 }];
    const controller = await fakeController({ kind: 'deploy', params: { ...deployParams(), scripts } }, image.path);
    try {
      const { outcome, powered } = await agent(controller.url, [{ name: target.name, sizeBytes: 64 * MiB }]);
      const message = 'script layout left disk-layout.json: a disk layout is for tree deploys (an image brings its own partitions)';
      expect(outcome).toEqual({ result: 'failed', message });
      expect(powered).toEqual([]);
      expect(controller.flow()).toEqual(['/agent/v1/hello', '/agent/v1/scripts/layout', '/agent/v1/fail']);
      expect(controller.calls.at(-1)!.body).toEqual({ code: 'script', stage: 'script-layout', message });
      expect(isZero(await readDevice(loops, target.device, 0, 64 * MiB))).toBe(true);
    } finally {
      await controller.close();
    }
  });

  it('refuses malformed parameters before touching a disk', async () => {
    const controller = await fakeController({ kind: 'deploy', params: { image: { url: '/x', sha256: 'nope', sizeBytes: 1, format: 'raw' }, seed } }, null);
    try {
      const { outcome } = await agent(controller.url, []);
      expect(outcome).toEqual({ result: 'failed', message: 'params.image.sha256 is not 64 hex digits' });
      expect(controller.flow()).toEqual(['/agent/v1/hello', '/agent/v1/fail']);
      expect(controller.calls.at(-1)!.body).toEqual({ code: 'params', message: 'params.image.sha256 is not 64 hex digits' });
    } finally {
      await controller.close();
    }
  });
});
