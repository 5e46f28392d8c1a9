import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { DhcpTrace, PENDING_MACS } from '../../src/dhcp/dhcp-trace.js';
import type { DhcpEvent } from '../../src/dhcp/dnsmasq-log.js';
import { systemClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import { DhcpService } from '../../src/dhcp/service.js';
import { waitFor } from '../support/e2e.js';
import { ROOT } from '../support/plinth-process.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

type TC = Awaited<ReturnType<typeof freshController>>;

const mac = (i: number) => `52:54:00:e0:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const ack = (m: string, address = '10.0.0.5'): DhcpEvent => ({
  kind: 'ack',
  mac: m,
  address,
  interface: 'br0',
  client: 'ipxe',
  vendorClass: 'PXEClient:Arch:00000:UNDI:002001',
  tags: ['ipxe', 'br0'],
  bootFile: 'http://10.0.0.1:7708/boot.ipxe',
  nextServer: '10.0.0.1',
  hostname: null,
});

describe.each(backends)('DHCP answers in the boot trace on $name', (backend) => {
  let t: TC;
  let trace: DhcpTrace;
  beforeAll(async () => {
    t = await freshController(backend);
    trace = new DhcpTrace({ store: t.controller.services.store, clock: systemClock });
    t.controller.boot.onAttemptStarted((trx, a) => trace.adoptPending(trx, a));
  });
  afterAll(async () => t?.close());

  const enrol = async (m: string) => {
    expect((await t.inject('GET', `/boot/machine.ipxe?mac=${m}`, { headers: { 'user-agent': 'iPXE/1.21.1' } })).statusCode).toBe(200);
    const list = (await t.api('GET', '/api/v1/machines?limit=1000')).json();
    const machine = list.items.find((x: { identity: { macs: string[] } }) => x.identity.macs.includes(m));
    return (await t.api('GET', `/api/v1/machines/${machine.name}/trace`)).json().attempts.at(-1).stages as { stage: string; detail: Record<string, unknown> }[];
  };

  it('wait in memory for a bounded number of MACs, answers each, and reach the first attempt of the enrolled machine', async () => {
    for (let i = 0; i < PENDING_MACS + 20; i++) expect(await trace.record(ack(mac(i)))).toBe('pending');
    for (let n = 0; n < 12; n++) await trace.record(ack(mac(PENDING_MACS + 19), `10.0.0.${100 + n}`));
    expect(trace.pendingMacs).toBe(PENDING_MACS);

    // The oldest MACs were forgotten: their machines boot and enrol without a dhcp stage.
    expect((await enrol(mac(0))).map((s) => s.stage)).not.toContain('dhcp');
    // The newest kept its last 8 answers, oldest first, before the boot request's stages.
    const stages = await enrol(mac(PENDING_MACS + 19));
    const dhcp = stages.filter((s) => s.stage === 'dhcp');
    expect(dhcp.map((s) => s.detail.address)).toEqual(Array.from({ length: 8 }, (_, n) => `10.0.0.${104 + n}`));
    expect(stages.findIndex((s) => s.stage === 'machine-script')).toBe(8);
    expect(trace.pendingMacs).toBe(PENDING_MACS - 1);
  });

  it("firmware opens a boot attempt; the installer's or an OS's DHCP joins the newest one", async () => {
    const m = mac(4000);
    expect((await t.api('POST', '/api/v1/machines', { name: 'known-1', identity: { macs: [m] } })).statusCode).toBe(201);
    const attempts = async () => (await t.api('GET', '/api/v1/machines/known-1/trace')).json().attempts as { decision: string; stages: { stage: string; detail: { client: string } }[] }[];
    await trace.record({ ...ack(m), client: 'bios-pxe' });
    await trace.record(ack(m));
    expect((await attempts()).map((a) => [a.decision, a.stages.map((s) => s.detail.client)])).toEqual([['dhcp-only', ['bios-pxe', 'ipxe']]]);
    expect((await t.inject('GET', `/boot/machine.ipxe?mac=${m}`, { headers: { 'user-agent': 'iPXE/1.21.1' } })).statusCode).toBe(200);
    await trace.record({ ...ack(m), client: 'other', vendorClass: null, bootFile: null });
    const after = await attempts();
    expect(after).toHaveLength(1);
    expect(after[0]!.decision).not.toBe('dhcp-only');
    expect(after[0]!.stages.map((s) => s.stage)).toEqual(['dhcp', 'dhcp', 'machine-script', 'dhcp']);
    // The next firmware DHCP is a new boot.
    await trace.record(ack(m));
    expect((await attempts()).map((a) => a.decision)).toEqual([after[0]!.decision, 'dhcp-only']);
  });

  it('a firmware answer read after the boot request it led to joins that request\'s attempt', async () => {
    const m = mac(4001);
    expect((await t.api('POST', '/api/v1/machines', { name: 'known-2', identity: { macs: [m] } })).statusCode).toBe(201);
    expect((await t.inject('GET', `/boot/machine.ipxe?mac=${m}`, { headers: { 'user-agent': 'iPXE/1.21.1' } })).statusCode).toBe(200);
    await trace.record(ack(m));
    const attempts = (await t.api('GET', '/api/v1/machines/known-2/trace')).json().attempts as { decision: string; stages: { stage: string }[] }[];
    expect(attempts).toHaveLength(1);
    expect(attempts[0]!.stages.map((s) => s.stage)).toEqual(['machine-script', 'dhcp']);
  });
  it("a boot server's answer read after the boot request joins that request's attempt, which has the proxy offer already", async () => {
    const m = mac(4002);
    expect((await t.api('POST', '/api/v1/machines', { name: 'known-3', identity: { macs: [m] } })).statusCode).toBe(201);
    // proxy mode: the offer opens the attempt, iPXE asks for its script, and only then is the
    // boot server's (port 4011) answer read from dnsmasq's log.
    await trace.record({ ...ack(m), kind: 'proxy', address: null });
    expect((await t.inject('GET', `/boot/machine.ipxe?mac=${m}`, { headers: { 'user-agent': 'iPXE/1.21.1' } })).statusCode).toBe(200);
    await trace.record({ ...ack(m), kind: 'boot-server', address: null });
    const attempts = (await t.api('GET', '/api/v1/machines/known-3/trace')).json().attempts as { decision: string; stages: { stage: string; detail: { event?: string } }[] }[];
    expect(attempts).toHaveLength(1);
    expect(attempts[0]!.stages.map((s) => `${s.stage}${s.detail?.event ? `:${s.detail.event}` : ''}`)).toEqual(['dhcp:proxy', 'machine-script', 'dhcp:boot-server']);
  });
});

describe.each(backends)("the DHCP service turns its child's log into the trace on $name", (backend) => {
  it('records what a dnsmasq log says, with nobody listening for events', async () => {
    // A stand-in for dnsmasq (a process printing a log captured from dnsmasq 2.90): what is
    // tested is the service between a child's stderr and the trace, not dnsmasq.
    const t = await freshController(backend);
    try {
      const lines = readFileSync(join(ROOT, 'test', 'fixtures', 'dnsmasq', 'full-mode.log'), 'utf8');
      const known = '52:54:00:aa:bb:03';
      expect((await t.api('POST', '/api/v1/machines', { name: 'logged-1', identity: { macs: [known] } })).statusCode).toBe(201);
      const service = new DhcpService({
        store: t.controller.services.store,
        clock: systemClock,
        log: createLogger('silent'),
        dir: join(t.config.dataDir, 'dhcp'),
        command: [process.execPath, '-e', `process.stderr.write(${JSON.stringify(lines)}); setInterval(() => {}, 1000)`, '--'],
        plan: { mode: 'full', interface: 'eth0', serverAddress: '10.78.0.1', range: '10.78.0.100,10.78.0.150', gateway: '', dns: '', leaseSeconds: 300, bootUrl: (a) => `http://${a}:7708` },
      });
      await service.start();
      try {
        const stages = await waitFor('the dhcp stage', 20_000, async () => {
          const a = (await t.api('GET', '/api/v1/machines/logged-1/trace')).json().attempts;
          return a.length ? (a[0].stages as { stage: string; detail: Record<string, unknown> }[]) : undefined;
        });
        expect(stages.map((s) => [s.stage, s.detail.client, s.detail.address])).toEqual([['dhcp', 'bios-pxe', '10.78.0.136']]);
      } finally {
        await service.stop();
      }
    } finally {
      await t.close();
    }
  });
});
