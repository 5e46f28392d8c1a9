/**
 * A test vCenter Automation REST API (`/api`, vSphere 7.0 U2+), answering like the vSphere
 * Automation API reference (developer.broadcom.com/xapis/vsphere-automation-api) documents
 * for the operations Plinth uses:
 *
 *   POST   /api/session                          basic auth → 201, the session id as a JSON string
 *   DELETE /api/session                          → 204
 *   GET    /api/vcenter/vm                       → [{vm, name, power_state, cpu_count, memory_size_MiB}]
 *   GET    /api/vcenter/vm/{vm}                  → Vm.Info: name, identity {bios_uuid, instance_uuid, name},
 *                                                  nics {key: {mac_address, …}}, disks, cdroms, boot, boot_devices, power_state
 *   GET    /api/vcenter/vm/{vm}/power            → {state: POWERED_ON|POWERED_OFF|SUSPENDED}
 *   POST   /api/vcenter/vm/{vm}/power?action=start|stop|reset|suspend → 204
 *   POST   /api/vcenter/vm/{vm}/guest/power?action=shutdown           → 204
 *   GET    /api/vcenter/vm/{vm}/hardware/boot    → {type: BIOS|EFI, …}
 *   GET|PUT /api/vcenter/vm/{vm}/hardware/boot/device → [{type: ETHERNET, nic} | {type: DISK, disks} | {type: CDROM} | {type: FLOPPY}]
 *
 * Errors are `{"error_type", "messages": [{"args", "default_message", "id"}]}` with the
 * documented status (401 UNAUTHENTICATED, 404 NOT_FOUND, 400 ALREADY_IN_DESIRED_STATE …).
 * Served over HTTPS with a self-signed certificate.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { closeServer, listenOnLoopback, PeerFaults, readBody } from './peer-faults.js';
import { makeSelfSignedCert } from './self-signed-cert.js';

export interface RestVm {
  vm: string;
  name: string;
  biosUuid: string;
  powerState: 'POWERED_ON' | 'POWERED_OFF' | 'SUSPENDED';
  firmware: 'BIOS' | 'EFI';
  nics: Record<string, string>;
  disks: string[];
  cdroms: string[];
  bootDevices: Array<Record<string, unknown>>;
  /** Power-ons and resets the VM went through, in order. */
  events: string[];
}

export interface VsphereRestPeer {
  url: string;
  caCert: string;
  username: string;
  password: string;
  vms: Map<string, RestVm>;
  sessions: Set<string>;
  failedLogins: number;
  /** Logins the service accepted (sessions opened). */
  logins: number;
  faults: PeerFaults;
  close(): Promise<void>;
}

function defaultVms(): Map<string, RestVm> {
  const vms: RestVm[] = [
    { vm: 'vm-1001', name: 'web-vc-01', biosUuid: '4205a1b2-c3d4-e5f6-0718-293a4b5c6d7e', powerState: 'POWERED_ON', firmware: 'BIOS', nics: { '4000': '00:50:56:a1:b2:01' }, disks: ['2000'], cdroms: ['3002'], bootDevices: [], events: [] },
    {
      vm: 'vm-1002',
      name: 'db-vc-01',
      biosUuid: '42051122-3344-5566-7788-99aabbccddee',
      powerState: 'POWERED_OFF',
      firmware: 'EFI',
      nics: { '4000': '00:50:56:a1:b2:02', '4001': '00:50:56:a1:b2:03' },
      disks: ['2000', '2001'],
      cdroms: [],
      bootDevices: [{ type: 'DISK', disks: ['2000'] }],
      events: [],
    },
  ];
  return new Map(vms.map((v) => [v.vm, v]));
}

const message = (id: string, text: string, args: string[] = []) => ({ args, default_message: text, id });

export async function startVsphereRestPeer(options: { username?: string; password?: string; withIdentity?: boolean } = {}): Promise<VsphereRestPeer> {
  const username = options.username ?? 'administrator@vsphere.local';
  const password = options.password ?? 'Rest-Pass-1';
  const vms = defaultVms();
  const sessions = new Set<string>();
  const faults = new PeerFaults();
  const state = { failedLogins: 0, logins: 0 };
  const cert = makeSelfSignedCert();

  const send = (res: ServerResponse, status: number, body?: unknown): void => {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const error = (res: ServerResponse, status: number, type: string, id: string, text: string, args: string[] = []): void =>
    send(res, status, { error_type: type, messages: [message(id, text, args)] });

  const info = (v: RestVm): Record<string, unknown> => ({
    name: v.name,
    ...(options.withIdentity === false ? {} : { identity: { name: v.name, bios_uuid: v.biosUuid, instance_uuid: `50${v.biosUuid.slice(2)}` } }),
    guest_OS: 'DEBIAN_11_64',
    power_state: v.powerState,
    hardware: { version: 'VMX_19', upgrade_policy: 'NEVER', upgrade_status: 'NONE' },
    boot: { type: v.firmware, delay: 0, retry: false, retry_delay: 10000, enter_setup_mode: false, efi_legacy_boot: false },
    boot_devices: v.bootDevices,
    cpu: { count: 2, cores_per_socket: 1, hot_add_enabled: false, hot_remove_enabled: false },
    memory: { size_MiB: 4096, hot_add_enabled: false },
    nics: Object.fromEntries(
      Object.entries(v.nics).map(([key, mac], i) => [
        key,
        { label: `Network adapter ${i + 1}`, type: 'VMXNET3', mac_type: 'ASSIGNED', mac_address: mac, state: 'CONNECTED', start_connected: true, allow_guest_control: true, wake_on_lan_enabled: true, upt_compatibility_enabled: false, backing: { type: 'STANDARD_PORTGROUP', network: 'network-11', network_name: 'VM Network' } },
      ]),
    ),
    disks: Object.fromEntries(v.disks.map((key, i) => [key, { label: `Hard disk ${i + 1}`, type: 'SCSI', capacity: 17179869184, backing: { type: 'VMDK_FILE', vmdk_file: `[datastore1] ${v.name}/${v.name}_${i}.vmdk` } }])),
    cdroms: Object.fromEntries(v.cdroms.map((key) => [key, { label: 'CD/DVD drive 1', type: 'SATA', state: 'NOT_CONNECTED', start_connected: false, allow_guest_control: true, backing: { type: 'CLIENT_DEVICE', device_access_type: 'PASSTHRU' } }])),
  });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://peer');
    const method = req.method ?? 'GET';
    const sessionId = req.headers['vmware-api-session-id'];
    faults.requests.push({ method, path: `${url.pathname}${url.search}`, auth: typeof sessionId === 'string' ? 'session' : req.headers.authorization ? 'basic' : 'none' });
    if (await faults.apply(res, () => ({ error_type: 'SERVICE_UNAVAILABLE', messages: [message('vapi.send.failure', 'Service unavailable.')] }))) return;
    const raw = await readBody(req);
    const path = url.pathname;

    if (path === '/api/session' && method === 'POST') {
      const basic = req.headers.authorization?.startsWith('Basic ') ? Buffer.from(req.headers.authorization.slice(6), 'base64').toString('utf8') : '';
      if (basic !== `${username}:${password}`) {
        state.failedLogins++;
        return error(res, 401, 'UNAUTHENTICATED', 'com.vmware.vapi.endpoint.method.authentication.required', 'Authentication required.');
      }
      const id = randomBytes(16).toString('hex');
      sessions.add(id);
      state.logins++;
      return send(res, 201, id);
    }
    if (typeof sessionId !== 'string' || !sessions.has(sessionId)) {
      return error(res, 401, 'UNAUTHENTICATED', 'com.vmware.vapi.endpoint.method.authentication.required', 'Authentication required.');
    }
    if (path === '/api/session' && method === 'DELETE') {
      sessions.delete(sessionId);
      return send(res, 204);
    }
    if (path === '/api/vcenter/vm' && method === 'GET') {
      return send(res, 200, [...vms.values()].map((v) => ({ vm: v.vm, name: v.name, power_state: v.powerState, cpu_count: 2, memory_size_MiB: 4096 })));
    }
    const m = /^\/api\/vcenter\/vm\/([^/]+)(\/.*)?$/.exec(path);
    if (m) {
      const v = vms.get(decodeURIComponent(m[1]!));
      if (!v) return error(res, 404, 'NOT_FOUND', 'com.vmware.api.vcenter.vm.not_found', `Virtual machine with identifier '${m[1]}' does not exist.`, [m[1]!]);
      const rest = m[2] ?? '';
      const action = url.searchParams.get('action');
      if (rest === '' && method === 'GET') return send(res, 200, info(v));
      if (rest === '/power' && method === 'GET') return send(res, 200, v.powerState === 'POWERED_OFF' ? { state: v.powerState, clean_power_off: true } : { state: v.powerState });
      if ((rest === '/power' || rest === '/guest/power') && method === 'POST' && faults.powerIgnored) return send(res, 204);
      if (rest === '/power' && method === 'POST') {
        if (action === 'start') {
          if (v.powerState === 'POWERED_ON') return error(res, 400, 'ALREADY_IN_DESIRED_STATE', 'com.vmware.api.vcenter.vm.power.already_powered_on', 'Virtual machine is already powered on.');
          v.powerState = 'POWERED_ON';
          v.events.push('power-on');
          return send(res, 204);
        }
        if (action === 'stop') {
          if (v.powerState === 'POWERED_OFF') return error(res, 400, 'ALREADY_IN_DESIRED_STATE', 'com.vmware.api.vcenter.vm.power.already_powered_off', 'Virtual machine is already powered off.');
          v.powerState = 'POWERED_OFF';
          return send(res, 204);
        }
        if (action === 'reset') {
          if (v.powerState !== 'POWERED_ON') return error(res, 400, 'NOT_ALLOWED_IN_CURRENT_STATE', 'com.vmware.api.vcenter.vm.power.not_powered_on', 'Virtual machine is not powered on.');
          v.events.push('reset');
          return send(res, 204);
        }
        if (action === 'suspend') {
          v.powerState = 'SUSPENDED';
          return send(res, 204);
        }
        return error(res, 400, 'INVALID_ARGUMENT', 'vapi.method.input.invalid', `Unknown action '${String(action)}'.`);
      }
      if (rest === '/guest/power' && method === 'POST' && action === 'shutdown') {
        if (v.powerState !== 'POWERED_ON') return error(res, 400, 'NOT_ALLOWED_IN_CURRENT_STATE', 'com.vmware.api.vcenter.vm.guest.power.not_powered_on', 'Virtual machine is not powered on.');
        v.powerState = 'POWERED_OFF';
        return send(res, 204);
      }
      if (rest === '/hardware/boot' && method === 'GET') return send(res, 200, info(v)['boot']);
      if (rest === '/hardware/boot/device' && method === 'GET') return send(res, 200, v.bootDevices);
      if (rest === '/hardware/boot/device' && method === 'PUT') {
        const body = JSON.parse(raw || '{}') as { devices?: Array<Record<string, unknown>> };
        for (const d of body.devices ?? []) {
          const bad =
            (d['type'] === 'ETHERNET' && !(String(d['nic']) in v.nics)) ||
            (d['type'] === 'DISK' && !((d['disks'] as string[] | undefined) ?? []).every((k) => v.disks.includes(k))) ||
            (d['type'] === 'CDROM' && v.cdroms.length === 0) ||
            !['ETHERNET', 'DISK', 'CDROM', 'FLOPPY'].includes(String(d['type']));
          if (bad) return error(res, 400, 'INVALID_ARGUMENT', 'com.vmware.api.vcenter.vm.hardware.boot.device.invalid', `Invalid boot device ${JSON.stringify(d)}.`);
        }
        // faults.alterBoot: accepted, and the old order kept.
        if (!faults.bootAltered) v.bootDevices = body.devices ?? [];
        return send(res, 204);
      }
    }
    return error(res, 404, 'NOT_FOUND', 'com.vmware.vapi.rest.httpNotFound', 'Not found.');
  };

  const server: Server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) error(res, 500, 'ERROR', 'internal', String(err));
    });
  });
  const port = await listenOnLoopback(server);
  return {
    url: `https://127.0.0.1:${port}`,
    caCert: cert.cert,
    username,
    password,
    vms,
    sessions,
    get failedLogins() {
      return state.failedLogins;
    },
    get logins() {
      return state.logins;
    },
    faults,
    close: async () => {
      faults.hang(false);
      await closeServer(server);
    },
  };
}
