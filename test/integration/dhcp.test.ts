import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { parsePrometheus, valueOf } from '../support/prometheus.js';
import { waitFor } from '../support/e2e.js';
import { ensureBuilt, ROOT, startServe, type ServeProcess } from '../support/plinth-process.js';
import { ensureDebianPackages, hasCommand } from '../support/peers/debian-packages.js';
import { createTestNetwork, isRoot, type TestNetwork } from '../support/peers/netns.js';
import { startSiteDhcp, type SiteDhcp } from '../support/peers/site-dhcp.js';
import type { DhcpEvent } from '../../src/dhcp/dnsmasq-log.js';

/**
 * Plinth's supervised dnsmasq on a real bridge: the controller's dnsmasq runs in namespace
 * `ctl` (10.78.0.1), a "site" DHCP server (a separate dnsmasq) in `site` for proxy mode, and
 * DHCP clients of each kind (test/support/peers/dhcp-probe.mjs: BIOS PXE ROM, UEFI PXE ROM,
 * iPXE, UEFI HTTP Boot) in `cli`. Needs root for the namespaces.
 */
const canRun = isRoot() || process.env.CI === 'true';
if (!canRun) console.warn('dhcp.test.ts skipped: creating network namespaces needs root (it never skips with CI=true)');

const PROBE = join(ROOT, 'test', 'support', 'peers', 'dhcp-probe.mjs');
const run = promisify(execFile);

interface Reply {
  from: string;
  type: string;
  yiaddr: string;
  siaddr: string;
  file: string;
  vendorClass?: string;
  bootfile?: string;
  pxeVendor?: string;
  router?: string;
}

let macSeq = 0x10;
const nextMac = () => `52:54:00:d1:00:${(macSeq++).toString(16).padStart(2, '0')}`;

describe.skipIf(!canRun).each(backends)('DHCP modes on a real bridge, $name', (backend) => {
  let net: TestNetwork;
  beforeAll(() => {
    ensureDebianPackages(['dnsmasq-base', 'iproute2'], () => hasCommand('dnsmasq') && hasCommand('ip'));
    net = createTestNetwork({ ctl: '10.78.0.1/24', site: '10.78.0.2/24', cli: '10.78.0.250/24' });
  });
  afterAll(() => net?.remove());

  /** Runs one client of `kind`; `replies` bounds how many answers it waits for. */
  const probe = async (kind: string, mac: string, replies: number, extra: string[] = []): Promise<Reply[]> => {
    const { stdout } = await run(...net.command('cli', [process.execPath, PROBE, '--kind', kind, '--mac', mac, '--request', '--replies', String(replies), '--wait', '20', ...extra]));
    return stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Reply)
      .map((r) => ({ ...r, ...(r.bootfile ? { bootfile: r.bootfile.replace(/\0+$/, '') } : {}) }));
  };
  const listening = (port: number) =>
    waitFor(`dnsmasq listening on UDP ${port}`, 20_000, async () => (net.exec('ctl', ['ss', '-Hlun']).includes(`:${port} `) ? true : undefined));

  async function startPlinth(dhcp: Record<string, string>) {
    const events: { e: DhcpEvent; outcome: string }[] = [];
    const t = await freshController(
      backend,
      { publicUrl: 'http://10.78.0.1:7708', tftp: { root: '/usr/lib/ipxe' }, dhcp: { interface: 'eth0', ...dhcp } },
      { dhcp: { command: [...net.prefix('ctl'), 'dnsmasq'], serverAddress: '10.78.0.1', onEvent: (e, outcome) => events.push({ e, outcome }) } },
    );
    return { t, events, eventFor: (mac: string, kind: string) => waitFor(`DHCP event ${kind} of ${mac}`, 20_000, async () => events.find((x) => x.e.mac === mac && x.e.kind === kind)) };
  }

  describe('full mode', () => {
    let p: Awaited<ReturnType<typeof startPlinth>>;
    const known = { name: 'rack1-node7', mac: nextMac() };
    beforeAll(async () => {
      // The netmask is given: this controller runs outside namespace ctl, where eth0 is.
      p = await startPlinth({ mode: 'full', range: '10.78.0.100,10.78.0.150,255.255.255.0', leaseTime: '5m' });
      expect((await p.t.api('POST', '/api/v1/machines', { name: known.name, identity: { macs: [known.mac] } })).statusCode).toBe(201);
      // dnsmasq reads the hosts directory as an unprivileged user: it must be able to enter the data directory.
      chmodSync(p.t.config.dataDir, 0o711);
      await p.t.controller.listen();
      await listening(67);
    });
    afterAll(async () => p?.t.close());

    it('answers each kind of client with what it can boot', async () => {
      const bios = await probe('bios', nextMac(), 2);
      expect(bios.map((r) => r.type)).toEqual(['OFFER', 'ACK']);
      const ack = bios[1]!;
      expect(ack.yiaddr).toMatch(/^10\.78\.0\.(1[0-4]\d|150)$/);
      expect(ack).toMatchObject({ from: '10.78.0.1', siaddr: '10.78.0.1', bootfile: 'undionly.kpxe' });
      expect(ack.router).toBeUndefined(); // dnsmasq would offer itself without `dhcp-option=3`

      expect((await probe('uefi', nextMac(), 2))[1]).toMatchObject({ type: 'ACK', siaddr: '10.78.0.1', bootfile: 'ipxe.efi' });
      expect((await probe('ipxe', nextMac(), 2))[1]).toMatchObject({ type: 'ACK', bootfile: 'http://10.78.0.1:7708/boot.ipxe' });
      const http = (await probe('http', nextMac(), 2))[1]!;
      expect(http).toMatchObject({ type: 'ACK', bootfile: 'http://10.78.0.1:7708/boot/ipxe.efi', vendorClass: 'HTTPClient' });

      // Each answer read from dnsmasq's log is counted in the metrics by kind and client.
      await waitFor('an ack for each kind of client', 20_000, async () => (['bios-pxe', 'uefi-pxe', 'ipxe', 'http-boot'].every((c) => p.events.some((x) => x.e.kind === 'ack' && x.e.client === c)) ? true : undefined));
      const families = parsePrometheus((await p.t.controller.metrics.text()).body);
      for (const client of ['bios-pxe', 'uefi-pxe', 'ipxe', 'http-boot']) {
        expect(valueOf(families, 'plinth_dhcp_answers_total', { kind: 'ack', client })).toBe(p.events.filter((x) => x.e.kind === 'ack' && x.e.client === client).length);
      }
    });

    it("a known machine's DHCP exchange opens its boot attempt in the trace, and its boot request continues it", async () => {
      await probe('bios', known.mac, 2);
      const { e, outcome } = await p.eventFor(known.mac, 'ack');
      expect(outcome).toBe('recorded');
      expect(e.tags).toContain('known'); // dnsmasq read it from the hosts directory
      let trace = (await p.t.api('GET', `/api/v1/machines/${known.name}/trace`)).json();
      const { attempts } = trace;
      const last = attempts[attempts.length - 1];
      expect(last.decision).toBe('dhcp-only');
      expect(last.stages.map((s: { stage: string }) => s.stage)).toEqual(['dhcp']);
      expect(last.stages[0].detail).toMatchObject({ event: 'ack', client: 'bios-pxe', mac: known.mac, bootFile: 'undionly.kpxe', nextServer: '10.78.0.1' });

      const script = await p.t.inject('GET', `/boot/machine.ipxe?mac=${known.mac}&platform=pcbios&arch=i386`, { headers: { 'user-agent': 'iPXE/1.21.1' } });
      expect(script.statusCode).toBe(200);
      trace = (await p.t.api('GET', `/api/v1/machines/${known.name}/trace`)).json();
      const after = trace.attempts as { id: string; decision: string; stages: { stage: string }[] }[];
      expect(after.length).toBe(attempts.length);
      expect(after[after.length - 1]!.id).toBe(last.id);
      expect(after[after.length - 1]!.decision).not.toBe('dhcp-only');
      expect(after[after.length - 1]!.stages.map((s) => s.stage).slice(0, 2)).toEqual(['dhcp', 'machine-script']);
    });

    it('an unknown machine still boots; its DHCP exchange reaches the trace once it enrols', async () => {
      const mac = nextMac();
      expect((await probe('ipxe', mac, 2))[1]).toMatchObject({ type: 'ACK', bootfile: 'http://10.78.0.1:7708/boot.ipxe' });
      expect((await p.eventFor(mac, 'ack')).outcome).toBe('pending');
      const script = await p.t.inject('GET', `/boot/machine.ipxe?mac=${mac}&platform=pcbios&arch=i386`, { headers: { 'user-agent': 'iPXE/1.21.1' } });
      expect(script.statusCode).toBe(200);
      const list = (await p.t.api('GET', '/api/v1/machines')).json();
      const machine = list.items.find((m: { identity: { macs: string[] } }) => m.identity.macs.includes(mac));
      expect(machine).toBeDefined();
      const trace = (await p.t.api('GET', `/api/v1/machines/${machine.name}/trace`)).json();
      const stages = trace.attempts.at(-1).stages;
      expect(stages[0]).toMatchObject({ stage: 'dhcp', detail: { client: 'ipxe', bootFile: 'http://10.78.0.1:7708/boot.ipxe' } });
      expect(stages[1].stage).toBe('machine-script');
    });

    it('writes a hosts file per known machine, atomically, and dnsmasq is restarted when it dies', async () => {
      const dir = p.t.controller.dhcp!.hostsDir;
      const files = readdirSync(dir);
      expect(files.filter((f) => f.endsWith('.hosts')).length).toBeGreaterThanOrEqual(1);
      expect(files.some((f) => f.startsWith('.'))).toBe(false);
      expect(files.map((f) => readFileSync(join(dir, f), 'utf8')).join('')).toContain(`${known.mac},${known.name}\n`);

      // A machine added while dnsmasq runs is known to it without a restart.
      const later = { name: 'rack1-node8', mac: nextMac() };
      expect((await p.t.api('POST', '/api/v1/machines', { name: later.name, identity: { macs: [later.mac] } })).statusCode).toBe(201);
      const pid = p.t.controller.dhcp!.dnsmasqPid!;
      await p.t.controller.dhcp!.syncHosts();
      await waitFor('dnsmasq knows the new machine', 20_000, async () => {
        await probe('bios', later.mac, 2);
        return p.events.find((x) => x.e.mac === later.mac && x.e.kind === 'ack' && x.e.tags.includes('known'));
      });
      expect(p.t.controller.dhcp!.dnsmasqPid).toBe(pid);

      process.kill(pid, 'SIGKILL');
      await waitFor('dnsmasq restarted', 20_000, async () => {
        const now = p.t.controller.dhcp!.dnsmasqPid;
        return now && now !== pid ? now : undefined;
      });
      await listening(67);
      expect((await probe('bios', nextMac(), 2))[1]).toMatchObject({ type: 'ACK', bootfile: 'undionly.kpxe' });
    });

    it('a machine given a boot address gets it from DHCP without a dnsmasq restart; a bad or taken address is refused naming bootAddress', async () => {
      const m = { name: 'rack1-node9', mac: nextMac() };
      expect((await p.t.api('POST', '/api/v1/machines', { name: m.name, identity: { macs: [m.mac] } })).statusCode).toBe(201);
      const before = (await probe('bios', m.mac, 2))[1]!;
      expect(before.yiaddr).toMatch(/^10\.78\.0\.(1[0-4]\d|150)$/);
      const pid = p.t.controller.dhcp!.dnsmasqPid;
      // Outside the dynamic range, inside the subnet.
      const r = await p.t.api('PATCH', `/api/v1/machines/${m.name}`, { bootAddress: '10.78.0.42' });
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json().bootAddress).toBe('10.78.0.42');
      await waitFor('dnsmasq hands out the boot address', 20_000, async () => ((await probe('bios', m.mac, 2))[1]?.yiaddr === '10.78.0.42' ? true : undefined));
      expect(p.t.controller.dhcp!.dnsmasqPid).toBe(pid);

      for (const [value, why] of [
        ['10.79.0.5', /not in the provisioning subnet 10\.78\.0\.0\/24/],
        ['10.78.0.255', /broadcast/],
        ['10.78.0.0', /network/],
        ['10.78.0.1', /controller's own/],
        ['10.78.0', /not an IPv4 address/],
      ] as const) {
        const bad = await p.t.api('PATCH', `/api/v1/machines/${known.name}`, { bootAddress: value });
        expect(bad.statusCode, value).toBe(400);
        expect(bad.json().error.details.field).toBe('bootAddress');
        expect(bad.json().error.message).toMatch(why);
      }
      const taken = await p.t.api('PATCH', `/api/v1/machines/${known.name}`, { bootAddress: '10.78.0.42' });
      expect(taken.statusCode).toBe(409);
      expect(taken.json().error.details).toMatchObject({ field: 'bootAddress', existing: m.name });
      expect((await p.t.api('GET', `/api/v1/machines/${known.name}`)).json().bootAddress).toBeNull();

      const cleared = await p.t.api('PATCH', `/api/v1/machines/${m.name}`, { bootAddress: null });
      expect(cleared.json().bootAddress).toBeNull();
      await waitFor('dnsmasq forgets the boot address', 20_000, async () => ((await probe('bios', m.mac, 2))[1]?.yiaddr !== '10.78.0.42' ? true : undefined));
    });

    it('stops dnsmasq with the controller', async () => {
      const pid = p.t.controller.dhcp!.dnsmasqPid!;
      await p.t.close();
      expect(() => process.kill(pid, 0)).toThrow();
    });
  });

  describe('proxy mode, next to the site DHCP server', () => {
    let p: Awaited<ReturnType<typeof startPlinth>>;
    let site: SiteDhcp;
    beforeAll(async () => {
      site = await startSiteDhcp(net, { range: '10.78.0.160,10.78.0.200', router: '10.78.0.2' });
      p = await startPlinth({ mode: 'proxy' });
      await p.t.controller.listen();
      await listening(4011);
    });
    afterAll(async () => {
      await p?.t.close();
      await site?.stop();
    });

    const hex = (s: string) => Buffer.from(s).toString('hex');

    it('the site hands out the address; Plinth only tells PXE and HTTP-boot clients what to boot', async () => {
      for (const [kind, menu, client, bootFile] of [
        ['bios', 'BIOS PXE', 'bios-pxe', 'undionly.kpxe'],
        // NOTE: dnsmasq sends a UEFI PXE client no menu, only itself as next server (siaddr).
        ['uefi', null, 'uefi-pxe', null],
        ['ipxe', 'iPXE', 'ipxe', 'http://10.78.0.1:7708/boot.ipxe'],
      ] as const) {
        const mac = nextMac();
        // A PXE client then asks the proxy's boot server (port 4011) for the menu item's file.
        const replies = await probe(kind, mac, bootFile ? 4 : 3, ['--pxe', '10.78.0.250']);
        const fromSite = replies.find((r) => r.from === '10.78.0.2' && r.type === 'ACK');
        expect(fromSite?.yiaddr).toMatch(/^10\.78\.0\.(1[6-9]\d|200)$/);
        const proxy = replies.find((r) => r.from === '10.78.0.1');
        expect(proxy, JSON.stringify(replies)).toMatchObject({ type: 'OFFER', yiaddr: '0.0.0.0', vendorClass: 'PXEClient' });
        if (menu) expect(proxy!.pxeVendor, JSON.stringify(replies)).toContain(hex(menu));
        else expect(proxy!.siaddr).toBe('10.78.0.1');
        expect((await p.eventFor(mac, 'proxy')).e.client).toBe(client);
        if (bootFile) {
          expect(replies.find((r) => r.from === '10.78.0.1' && r.type === 'ACK')).toMatchObject({ siaddr: '10.78.0.1', file: bootFile });
          expect((await p.eventFor(mac, 'boot-server')).e).toMatchObject({ client, bootFile });
        }
      }
      const replies = await probe('http', nextMac(), 3);
      const proxy = replies.find((r) => r.from === '10.78.0.1');
      expect(proxy).toMatchObject({ yiaddr: '0.0.0.0', vendorClass: 'HTTPClient', file: 'http://10.78.0.1:7708/boot/ipxe.efi' });
      expect(replies.find((r) => r.from === '10.78.0.1' && r.yiaddr !== '0.0.0.0')).toBeUndefined();
    });
  });
});

describe.skipIf(!canRun)('a controller killed with SIGKILL, and its dnsmasq', () => {
  let net: TestNetwork;
  let serve: ServeProcess | null = null;
  const dataDir = mkdtempSync(join(tmpdir(), 'plinth-dhcp-kill-'));
  const pidFile = join(dataDir, 'dhcp', 'dnsmasq.pid');
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  beforeAll(() => {
    ensureDebianPackages(['dnsmasq-base', 'iproute2'], () => hasCommand('dnsmasq') && hasCommand('ip'));
    ensureBuilt();
    chmodSync(dataDir, 0o711);
    net = createTestNetwork({ ctl: '10.78.0.1/24' });
  }, 300_000);
  afterAll(async () => {
    await serve?.stop();
    net?.remove();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** `plinth serve` (a real process) in namespace ctl, Plinth the DHCP server there. */
  const start = async () => {
    const s = await startServe({ PLINTH_DATA_DIR: dataDir, PLINTH_LISTEN: '0.0.0.0:7708', PLINTH_LOG_LEVEL: 'info' }, ['--dhcp', 'full', '--dhcp-interface', 'eth0', '--dhcp-range', '10.78.0.100,10.78.0.150'], {
      prefix: net.prefix('ctl'),
      readyTimeoutMs: 120_000,
    });
    await s.waitForLog((l) => l.msg === 'dnsmasq started', 120_000);
    return s;
  };
  const pidInFile = () => waitFor('the dnsmasq pid file', 30_000, async () => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) || undefined : undefined));

  it('outlives it; the next start stops it by its pid file before starting its own, and a clean stop leaves none', async () => {
    serve = await start();
    const first = await pidInFile();
    expect(readFileSync(`/proc/${first}/cmdline`, 'utf8')).toContain(`--conf-file=${join(dataDir, 'dhcp', 'dnsmasq.conf')}`);
    const killed = serve;
    serve = null;
    const gone = new Promise((r) => killed.child.once('exit', r));
    killed.child.kill('SIGKILL');
    await gone;
    // Nothing stopped it: it still holds the DHCP port of namespace ctl.
    expect(alive(first)).toBe(true);
    expect(net.exec('ctl', ['ss', '-Hlunp'])).toContain(`pid=${first},`);

    serve = await start();
    const stale = serve.logs.find((l) => String(l.msg).startsWith(`stopping dnsmasq ${first},`));
    expect(stale, JSON.stringify(serve.logs.slice(-20))).toMatchObject({ pid: first });
    expect(alive(first)).toBe(false);
    const second = await waitFor('a new pid in the pid file', 30_000, async () => {
      const pid = await pidInFile();
      return pid !== first ? pid : undefined;
    });
    expect(alive(second)).toBe(true);
    await waitFor('the new dnsmasq listening on UDP 67', 20_000, async () => (net.exec('ctl', ['ss', '-Hlunp']).includes(`pid=${second},`) ? true : undefined));

    await serve.stop();
    serve = null;
    expect(alive(second)).toBe(false);
    expect(existsSync(pidFile)).toBe(false);
  }, 600_000);
});
