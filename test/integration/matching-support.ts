import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Facts, HwTuple } from '../../src/core/facts.js';

/**
 * Simulated blades for the matching tests: the real hardware list of an HP BL460c Gen8
 * (/work/shared/fixtures/hw-lists-hp-bl460c, 527 lines) with the serial, MACs and address
 * made unique per machine, and a few values changed to make hardware variants. A machine
 * boots and reports as a real one does, over HTTP: boot script (run token), agent hello,
 * facts.
 */
const FIXTURE = '/work/shared/fixtures/hw-lists-hp-bl460c/ProLiantBL460cGen8641016B21-HP-CZ3404YWNN9c-b6-54-88-2d-b0.hw_.json';
const BASE: HwTuple[] = (JSON.parse(readFileSync(FIXTURE, 'utf8')) as unknown[][]).map((l) => l.map(String) as HwTuple);

export interface BladeVariant {
  /** `system product name` */
  product?: string;
  /** cores per physical CPU */
  cores?: string;
}

const hex = (n: number) => n.toString(16).padStart(2, '0');
export const bladeSerial = (i: number) => `CZ${String(i).padStart(8, '0')}`;
export const bladeMac = (i: number, nic = 0) => `9c:b6:${hex((i >> 16) & 255)}:${hex((i >> 8) & 255)}:${hex(i & 255)}:${hex(0xb0 + nic * 4)}`;

export function bladeHw(i: number, v: BladeVariant = {}): HwTuple[] {
  return BASE.map((line): HwTuple => {
    const [c, id, key] = line;
    if (c === 'system' && id === 'product' && key === 'serial') return [c, id, key, bladeSerial(i)];
    if (c === 'system' && id === 'product' && key === 'name' && v.product) return [c, id, key, v.product];
    if (c === 'network' && key === 'serial') return [c, id, key, bladeMac(i, id === 'eth1' ? 1 : 0)];
    if (c === 'network' && key === 'ipv4') return [c, id, key, `10.29.${(i >> 8) & 255}.${i & 255}`];
    if (c === 'cpu' && id.startsWith('physical_') && key === 'cores' && v.cores) return [c, id, key, v.cores];
    return line;
  });
}

export function bladeFacts(i: number, v: BladeVariant = {}): Facts {
  const hw = bladeHw(i, v);
  return {
    system: { uuid: null, serial: bladeSerial(i), assetTag: null, manufacturer: 'HP', productName: v.product ?? 'ProLiant BL460c Gen8 (641016-B21)' },
    cpu: { architecture: 'x86_64', model: 'Intel(R) Xeon(R) CPU E5-2650 0 @ 2.00GHz', sockets: 2, cores: 16, threads: 32 },
    memory: { totalBytes: 64 * 2 ** 30, source: 'smbios' },
    disks: [{ name: 'sda', sizeBytes: 299 * 10 ** 9, model: 'LOGICAL VOLUME', serial: null, wwn: null, rotational: true }],
    nics: [0, 1].map((n) => ({ name: `eth${n}`, mac: bladeMac(i, n), driver: 'be2net', speedMbps: 10_000, link: true, ipv4: n === 0 ? [`10.29.${(i >> 8) & 255}.${i & 255}`] : [], ipv6: [] })),
    firmware: { bootMode: 'bios', vendor: 'HP', version: 'I31' },
    bmc: null,
    hw,
  };
}

export type Http = (method: string, path: string, body?: unknown, bearer?: string) => Promise<{ status: number; body: string }>;

/** HTTP through a controller's app in-process. */
export const injectHttp =
  (app: FastifyInstance): Http =>
  async (method, path, body, bearer) => {
    const r = await app.inject({
      method: method as 'GET',
      url: path,
      headers: { host: '10.0.2.2:7708', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
      ...(body !== undefined ? { payload: body as object } : {}),
    });
    return { status: r.statusCode, body: r.body };
  };

/** HTTP to a controller process. */
export const fetchHttp =
  (base: string): Http =>
  async (method, path, body, bearer) => {
    const headers: Record<string, string> = {};
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(base + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    return { status: r.status, body: await r.text() };
  };

function expectOk(step: string, r: { status: number; body: string }): void {
  if (r.status !== 200) throw new Error(`${step}: HTTP ${r.status} ${r.body}`);
}

/**
 * One machine network-boots and is inspected: its boot script (which enrols an unknown
 * machine and starts its inspection, or hands a machine whose inspection was asked for its
 * run token), the agent's hello, then its facts. Returns the run id.
 */
export async function bootAndReport(http: Http, facts: Facts): Promise<string> {
  const q = new URLSearchParams({ serial: facts.system.serial ?? '', manufacturer: facts.system.manufacturer ?? '', mac: facts.nics[0]!.mac });
  const script = await http('GET', `/boot/machine.ipxe?${q}`);
  expectOk('boot script', script);
  const token = /plinth\.token=(\S+)/.exec(script.body)?.[1];
  const run = /plinth\.run=(\S+)/.exec(script.body)?.[1];
  if (!token || !run) throw new Error(`boot script for ${facts.system.serial} carries no run token:\n${script.body}`);
  expectOk('hello', await http('POST', '/agent/v1/hello', { agentVersion: 'test' }, token));
  expectOk('facts', await http('POST', '/agent/v1/facts', facts, token));
  return run;
}
