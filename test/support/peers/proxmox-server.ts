/**
 * A test Proxmox VE API (no Proxmox emulator exists). It replays answers shaped after the
 * API schema Proxmox publishes (`apidoc.js`, the API viewer) for the paths Plinth uses:
 *
 *   GET  /api2/json/cluster/resources?type=vm           → [{id, type, node, vmid, name, status, template, …}]
 *   GET  /api2/json/nodes/{node}/qemu/{vmid}/config     → {name, smbios1, net0, boot, scsi0, ide2, bios, digest, …}
 *        (`current=1`: the running values, without pending changes)
 *   PUT  /api2/json/nodes/{node}/qemu/{vmid}/config     → null (synchronous variant; `digest` guards concurrent edits)
 *   GET  /api2/json/nodes/{node}/qemu/{vmid}/status/current → {status: running|stopped, qmpstatus, vmid, name, …}
 *   POST /api2/json/nodes/{node}/qemu/{vmid}/status/{start|stop|shutdown|reset|resume} → "UPID:…"
 *   GET  /api2/json/nodes/{node}/tasks/{upid}/status     → {status: running|stopped, exitstatus: "OK"|message, …}
 *   GET  /api2/json/nodes/{node}/storage/{storage}/content?content=iso → [{volid, format, size, content}]
 *   POST /api2/json/nodes/{node}/storage/{storage}/download-url → "UPID:…"
 *
 * Answers are `{"data": …}`; failures put the message in the HTTP reason phrase and, as newer
 * pve-http-server releases do, in `message`, with per-parameter `errors` on 400
 * (pve-http-server PVE/APIServer/Formatter/Standard.pm). A missing or wrong API token gets
 * 401 "No ticket" / "invalid token value!" after a delay, as pveproxy delays unauthorized
 * calls (3 s there, `unauthorizedDelayMs` here). Served over HTTPS with a self-signed
 * certificate, like a fresh Proxmox node.
 */
import { randomBytes, createHash } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { closeServer, listenOnLoopback, PeerFaults, readBody } from './peer-faults.js';
import { makeSelfSignedCert } from './self-signed-cert.js';

export interface ProxmoxVm {
  node: string;
  vmid: number;
  type: 'qemu' | 'lxc';
  status: 'running' | 'stopped';
  template?: boolean;
  /** The VM configuration as the config endpoint returns it (pending changes applied). */
  config: Record<string, string | number>;
  /** Values the running QEMU process uses; set at start from `config`. */
  running: Record<string, string | number>;
}

export interface ProxmoxPeer {
  url: string;
  caCert: string;
  tokenId: string;
  secret: string;
  vms: Map<number, ProxmoxVm>;
  /** Every task started, e.g. `qmstart:100`. */
  tasks: string[];
  isoContent: string[];
  /** The URL each downloaded ISO volume came from. */
  downloads: Map<string, string>;
  faults: PeerFaults;
  close(): Promise<void>;
}

export interface ProxmoxPeerOptions {
  tokenId?: string;
  secret?: string;
  unauthorizedDelayMs?: number;
}

function defaultVms(): Map<number, ProxmoxVm> {
  const vms: ProxmoxVm[] = [
    {
      node: 'pve1',
      vmid: 100,
      type: 'qemu',
      status: 'running',
      config: {
        name: 'web-01',
        smbios1: 'uuid=6f9c8a4e-2b1d-4e3f-9a7c-1d2e3f4a5b6c',
        net0: 'virtio=BC:24:11:2F:3A:01,bridge=vmbr0,firewall=1',
        scsi0: 'local-lvm:vm-100-disk-0,iothread=1,size=32G',
        ide2: 'none,media=cdrom',
        boot: 'order=scsi0;ide2;net0',
        bios: 'seabios',
        ostype: 'l26',
        memory: 2048,
        cores: 2,
        vmgenid: '1c8b5a2e-3f4d-4a6b-8c9d-0e1f2a3b4c5d',
      },
      running: {},
    },
    {
      node: 'pve2',
      vmid: 101,
      type: 'qemu',
      status: 'stopped',
      config: {
        name: 'db-01',
        smbios1: 'uuid=0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d,manufacturer=UGxpbnRo,base64=1',
        net0: 'e1000=BC:24:11:2F:3A:02,bridge=vmbr0',
        net1: 'virtio=bc:24:11:2f:3a:03,bridge=vmbr1,tag=20',
        virtio0: 'local-lvm:vm-101-disk-0,size=64G',
        boot: 'cdn',
        bootdisk: 'virtio0',
        bios: 'ovmf',
        efidisk0: 'local-lvm:vm-101-disk-1,efitype=4m,pre-enrolled-keys=1,size=4M',
        memory: 4096,
      },
      running: {},
    },
    { node: 'pve1', vmid: 9000, type: 'qemu', status: 'stopped', template: true, config: { name: 'debian-template', template: 1, net0: 'virtio=BC:24:11:00:90:00,bridge=vmbr0' }, running: {} },
    { node: 'pve2', vmid: 200, type: 'lxc', status: 'running', config: { hostname: 'ct-200' }, running: {} },
  ];
  for (const vm of vms) vm.running = { ...vm.config };
  return new Map(vms.map((v) => [v.vmid, v]));
}

function digest(config: Record<string, unknown>): string {
  return createHash('sha1').update(JSON.stringify(config)).digest('hex');
}

export async function startProxmoxPeer(options: ProxmoxPeerOptions = {}): Promise<ProxmoxPeer> {
  const tokenId = options.tokenId ?? 'automation@pve!plinth';
  const secret = options.secret ?? '0b9f2a52-7c3e-4d1a-9e8b-5a6c7d8e9f01';
  const unauthorizedDelayMs = options.unauthorizedDelayMs ?? 50;
  const vms = defaultVms();
  const tasks: string[] = [];
  const taskStatus = new Map<string, { node: string; exitstatus: string; type: string; id: string }>();
  const isoContent: string[] = ['local:iso/debian-12.5.0-amd64-netinst.iso'];
  const downloads = new Map<string, string>();
  const faults = new PeerFaults();
  const cert = makeSelfSignedCert();

  const reply = (res: ServerResponse, status: number, reason: string, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, reason, { 'content-type': 'application/json;charset=UTF-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const ok = (res: ServerResponse, data: unknown): void => reply(res, 200, 'OK', { data });
  const fail = (res: ServerResponse, status: number, message: string, errors?: Record<string, string>): void =>
    reply(res, status, message, { data: null, message: `${message}\n`, ...(errors ? { errors } : {}) });

  const startTask = (node: string, type: string, id: string, exitstatus = 'OK'): string => {
    const now = Math.floor(Date.now() / 1000).toString(16).toUpperCase().padStart(8, '0');
    const pid = randomBytes(3).toString('hex').toUpperCase().padStart(8, '0');
    const upid = `UPID:${node}:${pid}:${randomBytes(4).toString('hex').toUpperCase()}:${now}:${type}:${id}:${tokenId}:`;
    tasks.push(`${type}:${id}`);
    taskStatus.set(upid, { node, exitstatus, type, id });
    return upid;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://peer');
    const method = req.method ?? 'GET';
    const auth = req.headers.authorization ?? '';
    faults.requests.push({ method, path: url.pathname, auth: auth.startsWith('PVEAPIToken=') ? 'token' : 'none' });
    if (await faults.apply(res, () => ({ data: null }))) return;
    const raw = await readBody(req);
    const params = Object.fromEntries(new URLSearchParams(raw)) as Record<string, string>;

    const token = /^PVEAPIToken=([^=]+)=(.+)$/.exec(auth);
    if (!token || token[1] !== tokenId || token[2] !== secret) {
      await new Promise((r) => setTimeout(r, unauthorizedDelayMs));
      return reply(res, 401, token ? 'invalid token value!' : 'No ticket', { data: null });
    }
    const path = url.pathname.replace(/^\/api2\/json/, '');
    let m: RegExpExecArray | null;

    if (method === 'GET' && path === '/cluster/resources') {
      const type = url.searchParams.get('type');
      const list = [...vms.values()].map((vm) => ({
        id: `${vm.type}/${vm.vmid}`,
        type: vm.type,
        node: vm.node,
        vmid: vm.vmid,
        name: String(vm.config['name'] ?? vm.config['hostname'] ?? ''),
        status: vm.status,
        template: vm.template ? 1 : 0,
        maxcpu: 2,
        maxmem: 2147483648,
        uptime: vm.status === 'running' ? 5123 : 0,
      }));
      return ok(res, type === 'vm' || !type ? list : []);
    }

    if ((m = /^\/nodes\/([^/]+)\/tasks\/([^/]+)\/status$/.exec(path)) && method === 'GET') {
      const upid = decodeURIComponent(m[2]!);
      const task = taskStatus.get(upid);
      if (!task) return fail(res, 500, `no such task '${upid}'`);
      return ok(res, { upid, node: task.node, type: task.type, id: task.id, user: tokenId, status: 'stopped', exitstatus: task.exitstatus, starttime: Math.floor(Date.now() / 1000), pid: 4242 });
    }

    if ((m = /^\/nodes\/([^/]+)\/storage\/([^/]+)\/(content|download-url)$/.exec(path))) {
      const [, node, storage, what] = m;
      if (what === 'content' && method === 'GET') {
        return ok(res, isoContent.filter((v) => v.startsWith(`${storage}:`)).map((volid) => ({ volid, format: 'iso', content: 'iso', size: 654311424, ctime: 1700000000 })));
      }
      if (what === 'download-url' && method === 'POST') {
        if (!params['url'] || !params['filename'] || params['content'] !== 'iso') {
          return fail(res, 400, 'Parameter verification failed.', { url: params['url'] ? '' : 'property is missing and it is not optional' });
        }
        const volid = `${storage}:iso/${params['filename']}`;
        if (isoContent.includes(volid)) return fail(res, 500, `refusing to override existing file '${params['filename']}'`);
        isoContent.push(volid);
        downloads.set(volid, params['url']);
        return ok(res, startTask(node!, 'download', params['filename']!));
      }
    }

    if ((m = /^\/nodes\/([^/]+)\/qemu\/(\d+)(\/.*)?$/.exec(path))) {
      const node = m[1]!;
      const vmid = Number(m[2]);
      const rest = m[3] ?? '';
      const vm = vms.get(vmid);
      if (!vm || vm.type !== 'qemu' || vm.node !== node) return fail(res, 500, `Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`);

      if (rest === '/config' && method === 'GET') {
        const values = url.searchParams.get('current') === '1' && vm.status === 'running' ? vm.running : vm.config;
        return ok(res, { ...values, digest: digest(vm.config) });
      }
      if (rest === '/config' && method === 'PUT') {
        if (params['digest'] && params['digest'] !== digest(vm.config)) {
          return fail(res, 500, 'detected modified configuration - file changed by other user? Try again.');
        }
        const errors: Record<string, string> = {};
        if (params['boot'] !== undefined) {
          const order = /^order=(.+)$/.exec(params['boot'])?.[1];
          const unknown = order?.split(';').find((k) => vm.config[k] === undefined);
          if (!order || unknown) errors['boot'] = `invalid format - format error\nboot.order: ${unknown ? `device '${unknown}' does not exist` : 'value does not match the regex pattern'}\n`;
        }
        if (Object.keys(errors).length) return fail(res, 400, 'Parameter verification failed.', errors);
        for (const [k, v] of Object.entries(params)) if (k !== 'digest' && !(k === 'boot' && faults.bootAltered)) vm.config[k] = v;
        // Like qemu-server: values that cannot change under a running QEMU stay pending; the drive is hot-swapped.
        if (vm.status !== 'running') vm.running = { ...vm.config };
        else for (const k of Object.keys(params)) if (/^(ide|sata|scsi)\d+$/.test(k)) vm.running[k] = vm.config[k]!;
        return ok(res, null);
      }
      if (rest === '/status/current' && method === 'GET') {
        return ok(res, { vmid, name: vm.config['name'], status: vm.status, qmpstatus: vm.status, uptime: vm.status === 'running' ? 5123 : 0, cpus: 2, maxmem: 2147483648 });
      }
      if ((m = /^\/status\/(start|stop|shutdown|reset|resume|reboot)$/.exec(rest)) && method === 'POST') {
        const action = m[1]!;
        const running = vm.status === 'running';
        // faults.ignorePower: the task is started and ends OK, the VM stays as it was.
        if (faults.powerIgnored) return ok(res, startTask(node, `qm${action}`, String(vmid)));
        if (action === 'start') {
          if (running) return ok(res, startTask(node, 'qmstart', String(vmid), `VM ${vmid} already running`));
          vm.status = 'running';
          vm.running = { ...vm.config };
          return ok(res, startTask(node, 'qmstart', String(vmid)));
        }
        if (!running) return fail(res, 500, `VM ${vmid} not running`);
        if (action === 'stop' || action === 'shutdown') vm.status = 'stopped';
        if (action === 'reboot') vm.running = { ...vm.config };
        return ok(res, startTask(node, `qm${action}`, String(vmid)));
      }
    }
    return fail(res, 501, `Method '${method} /api2/json${path}' not implemented`);
  };

  const server: Server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) reply(res, 500, String(err).split('\n')[0]!, { data: null });
    });
  });
  const port = await listenOnLoopback(server);
  return {
    url: `https://127.0.0.1:${port}`,
    caCert: cert.cert,
    tokenId,
    secret,
    vms,
    tasks,
    isoContent,
    downloads,
    faults,
    close: async () => {
      faults.hang(false);
      await closeServer(server);
    },
  };
}
