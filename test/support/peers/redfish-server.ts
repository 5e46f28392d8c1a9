/**
 * A test Redfish service: serves the DMTF public mockup `public-rackmount1` (copied into a
 * temporary directory, the shared fixture stays read-only) or one of its vendor-shaped
 * variants (see redfish-variants.ts), and applies what a client asks to its in-memory tree:
 * SessionService login/logout, HTTP basic auth, `ComputerSystem.Reset`, boot override PATCH,
 * virtual media insert/eject (actions or PATCH). Bad credentials get 401. Faults (5xx then
 * recovery, latency, a hung service) come from PeerFaults.
 *
 * The hooks `onPowerChange` / `onBootOverride` / `onVirtualMedia` report what the BMC was
 * told, so that a lab QEMU VM can be started and stopped behind this service.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { closeServer, listenOnLoopback, PeerFaults, readBody } from './peer-faults.js';
import { buildVariant, pathKey, type Json, type RedfishVariant, type VariantTree } from './redfish-variants.js';
import { makeSelfSignedCert } from './self-signed-cert.js';

export const REDFISH_MOCKUP_DIR = '/work/shared/fixtures/redfish-mockups/public-rackmount1';

export interface BootOverrideSeen {
  target: string;
  enabled: string;
  mode: string | undefined;
  httpBootUri: string | undefined;
}

export interface PowerChangeDetail {
  resetType: string;
  /** The override target this boot used (None when no override was armed). */
  bootTarget: string;
  bootMode: string | undefined;
}

export interface RedfishPeerOptions {
  variant?: RedfishVariant;
  tls?: boolean;
  username?: string;
  password?: string;
  /** Serve a SessionService (default true); without it clients must use basic auth. */
  sessionService?: boolean;
  /** Error body shape (default dmtf). */
  errorShape?: RedfishErrorShape;
  /** Initial PowerState of the system (default: the mockup's, On). */
  powerState?: 'On' | 'Off';
  onPowerChange?: (systemId: string, state: 'On' | 'Off', detail: PowerChangeDetail) => void;
  onBootOverride?: (systemId: string, boot: BootOverrideSeen) => void;
  onVirtualMedia?: (slotPath: string, image: string | null) => void;
  /**
   * Reads of the system that still show the old PowerState after an accepted reset, as
   * sushy-tools in front of libvirt does while the domain starts or stops (default 0).
   */
  transitionReads?: number;
  /** Stores a `Once` boot override as `Continuous`, as sushy-tools' libvirt driver does. */
  onceBecomesContinuous?: boolean;
  /** Answers a boot mode change with success and keeps the mode it had. */
  modeIgnored?: boolean;
}

export interface RedfishPeer {
  url: string;
  /** PEM certificate to trust when `tls` is on. */
  caCert: string | undefined;
  variant: RedfishVariant;
  /** `@odata.id` of the (single) ComputerSystem. */
  systemPath: string;
  systemId: string;
  faults: PeerFaults;
  /** The live resource at a path (mutations are visible to clients). */
  resource(path: string): Json | undefined;
  system(): Json;
  openSessions(): number;
  /** Ends every session, as a BMC does when its SessionTimeout passes. */
  expireSessions(): void;
  /** Rotates the account's password (open sessions end, as on a BMC whose password changed). */
  setPassword(password: string): void;
  /** The image in the first CD/DVD slot that holds one, or null. */
  insertedImage(): string | null;
  sessionsCreated: number;
  sessionsDeleted: number;
  failedLogins: number;
  /** Every ResetType the service accepted, in order. */
  resets: string[];
  close(): Promise<void>;
}

function loadMockup(dir: string): Map<string, Json> {
  const resources = new Map<string, Json>();
  const walk = (d: string): void => {
    for (const entry of readdirSync(d)) {
      const full = join(d, entry);
      if (statSync(full).isDirectory()) walk(full);
      else if (entry === 'index.json') {
        const rel = relative(dir, d).split('\\').join('/');
        const path = rel === '' ? '/redfish/v1' : `/redfish/v1/${rel}`;
        resources.set(path, JSON.parse(readFileSync(full, 'utf8')) as Json);
      }
    }
  };
  walk(dir);
  return resources;
}

let loadedMockup: Map<string, Json> | undefined;

/** The mockup's resources, read once per test process from a private copy (the shared fixture stays read-only). */
function mockupResources(): Map<string, Json> {
  if (!loadedMockup) {
    const copy = mkdtempSync(join(tmpdir(), 'plinth-redfish-'));
    try {
      cpSync(REDFISH_MOCKUP_DIR, copy, { recursive: true });
      loadedMockup = loadMockup(copy);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  }
  return loadedMockup;
}

/**
 * How errors are shaped: `dmtf` (a generic `error.message`, the text in each
 * `@Message.ExtendedInfo` entry) or `sushy` (OpenStack sushy-tools: the text only in
 * `error.message`, entries carrying just a `MessageId`).
 */
export type RedfishErrorShape = 'dmtf' | 'sushy';

function redfishErrorBody(status: number, messageId: string, message: string, shape: RedfishErrorShape = 'dmtf'): Json {
  if (shape === 'sushy') {
    return {
      error: {
        code: 'Base.1.0.GeneralError',
        message,
        '@Message.ExtendedInfo': [{ '@odata.type': '/redfish/v1/$metadata#Message.1.0.0.Message', MessageId: 'Base.1.0.GeneralError' }],
      },
    };
  }
  return {
    error: {
      code: status >= 500 ? 'Base.1.8.InternalError' : 'Base.1.8.GeneralError',
      message: 'A general error has occurred. See ExtendedInfo for more information.',
      '@Message.ExtendedInfo': [{ MessageId: messageId, Message: message, Severity: 'Critical' }],
    },
  };
}

export async function startRedfishPeer(options: RedfishPeerOptions = {}): Promise<RedfishPeer> {
  const variant = options.variant ?? 'dmtf';
  const username = options.username ?? 'admin';
  let password = options.password ?? 'password';
  const sessionService = options.sessionService ?? true;
  const redfishError = (status: number, messageId: string, message: string): Json => redfishErrorBody(status, messageId, message, options.errorShape);

  const tree: VariantTree = buildVariant(mockupResources(), variant);

  const byKey = new Map<string, Json>();
  for (const [path, resource] of tree.resources) byKey.set(pathKey(path), resource);
  if (!sessionService) {
    byKey.delete(pathKey('/redfish/v1/SessionService'));
    byKey.delete(pathKey('/redfish/v1/SessionService/Sessions'));
    const root = byKey.get(pathKey('/redfish/v1'))!;
    delete root['SessionService'];
    delete (root['Links'] as Json)['Sessions'];
  }
  const system = byKey.get(pathKey(tree.systemPath))!;
  const systemId = system['Id'] as string;
  if (options.powerState) system['PowerState'] = options.powerState;

  const sessions = new Map<string, string>(); // token → session path
  const faults = new PeerFaults();
  const cert = options.tls ? makeSelfSignedCert() : undefined;
  const resets: string[] = [];
  // While a transition shows, reads of the system see `shown` instead of the real PowerState.
  const transition = { reads: 0, shown: '' };
  const state = { sessionsCreated: 0, sessionsDeleted: 0, failedLogins: 0 };
  let baseUrl = '';

  const send = (res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void => {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'odata-version': '4.0', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };

  const bootOf = (): Json => system['Boot'] as Json;
  const resetValues = (): string[] => {
    const action = (system['Actions'] as Json)['#ComputerSystem.Reset'] as Json;
    const listed = action['ResetType@Redfish.AllowableValues'];
    if (Array.isArray(listed)) return listed as string[];
    const info = byKey.get(pathKey(action['@Redfish.ActionInfo'] as string));
    const param = (info?.['Parameters'] as Json[] | undefined)?.find((p) => p['Name'] === 'ResetType');
    return (param?.['AllowableValues'] as string[] | undefined) ?? [];
  };

  const powerOn = (resetType: string): void => {
    const boot = bootOf();
    const enabled = boot['BootSourceOverrideEnabled'];
    const bootTarget = enabled === 'Disabled' ? 'None' : String(boot['BootSourceOverrideTarget'] ?? 'None');
    system['PowerState'] = 'On';
    options.onPowerChange?.(systemId, 'On', { resetType, bootTarget, bootMode: boot['BootSourceOverrideMode'] as string | undefined });
    // A one-time override is consumed by the boot that used it, as real BMCs do.
    if (enabled === 'Once') boot['BootSourceOverrideEnabled'] = 'Disabled';
  };
  const powerOff = (resetType: string): void => {
    system['PowerState'] = 'Off';
    options.onPowerChange?.(systemId, 'Off', { resetType, bootTarget: 'None', bootMode: undefined });
  };

  const applyReset = (res: ServerResponse, body: Json): void => {
    const resetType = body['ResetType'];
    if (typeof resetType !== 'string' || !resetValues().includes(resetType)) {
      return send(res, 400, redfishError(400, 'Base.1.8.ActionParameterNotSupported', `The value ${String(resetType)} for the property ResetType is not in the list of acceptable values.`));
    }
    const on = system['PowerState'] === 'On';
    const restart = ['ForceRestart', 'GracefulRestart', 'PowerCycle'].includes(resetType);
    if (restart && !on && tree.behaviour.restartRefusedWhileOff) {
      return send(res, 400, redfishError(400, 'iLO.0.10.InvalidOperationForSystemState', 'Power is off'));
    }
    resets.push(resetType);
    if (faults.powerIgnored) return send(res, 204);
    if (options.transitionReads) Object.assign(transition, { reads: options.transitionReads, shown: system['PowerState'] as string });
    switch (resetType) {
      case 'On':
      case 'ForceOn':
        if (!on) powerOn(resetType);
        break;
      case 'ForceOff':
      case 'GracefulShutdown':
        if (on) powerOff(resetType);
        break;
      case 'PushPowerButton':
        if (on) powerOff(resetType);
        else powerOn(resetType);
        break;
      case 'ForceRestart':
      case 'GracefulRestart':
      case 'PowerCycle':
        powerOn(resetType);
        break;
      default:
        break; // Nmi and the like change no power state.
    }
    send(res, 204);
  };

  const applyBootPatch = (res: ServerResponse, patch: Json): void => {
    const boot = bootOf();
    const allowedTargets = boot['BootSourceOverrideTarget@Redfish.AllowableValues'] as string[] | undefined;
    const target = patch['BootSourceOverrideTarget'];
    const enabled = patch['BootSourceOverrideEnabled'];
    const mode = patch['BootSourceOverrideMode'];
    if (mode !== undefined && tree.behaviour.modeReadOnly) {
      return send(res, 400, redfishError(400, 'Base.1.4.PropertyNotWritable', 'The property BootSourceOverrideMode is a read only property and cannot be assigned a value.'));
    }
    if (mode !== undefined && enabled !== undefined && tree.behaviour.modeWithEnabledRejected) {
      return send(res, 400, redfishError(400, 'IDRAC.1.6.SYS410', 'Unable to modify the attribute because the attribute is read-only and depends on other attributes.'));
    }
    if (target !== undefined && (typeof target !== 'string' || (allowedTargets && !allowedTargets.includes(target)))) {
      return send(res, 400, redfishError(400, 'Base.1.8.PropertyValueNotInList', `The value ${String(target)} for the property BootSourceOverrideTarget is not in the list of acceptable values.`));
    }
    if (enabled !== undefined && !['Disabled', 'Once', 'Continuous'].includes(enabled as string)) {
      return send(res, 400, redfishError(400, 'Base.1.8.PropertyValueNotInList', `The value ${String(enabled)} for the property BootSourceOverrideEnabled is not in the list of acceptable values.`));
    }
    if (mode !== undefined && !['UEFI', 'Legacy'].includes(mode as string)) {
      return send(res, 400, redfishError(400, 'Base.1.8.PropertyValueNotInList', `The value ${String(mode)} for the property BootSourceOverrideMode is not in the list of acceptable values.`));
    }
    // faults.alterBoot: both lies at once (a one-time override kept persistent, a mode change dropped).
    const altered = faults.bootAltered;
    for (const [k, v] of Object.entries(patch)) if (!(k === 'BootSourceOverrideMode' && (options.modeIgnored || altered))) boot[k] = v;
    if (enabled === 'Once' && (options.onceBecomesContinuous || altered)) boot['BootSourceOverrideEnabled'] = 'Continuous';
    if (enabled === 'Continuous' && altered) boot['BootSourceOverrideEnabled'] = 'Once';
    if (mode === undefined && tree.behaviour.modeRevertsUnlessSent) boot['BootSourceOverrideMode'] = 'Legacy';
    options.onBootOverride?.(systemId, {
      target: String(boot['BootSourceOverrideTarget']),
      enabled: String(boot['BootSourceOverrideEnabled']),
      mode: boot['BootSourceOverrideMode'] as string | undefined,
      httpBootUri: boot['HttpBootUri'] as string | undefined,
    });
    send(res, 204);
  };

  const applyMedia = (res: ServerResponse, slotPath: string, slot: Json, image: unknown, inserted: boolean): void => {
    if (inserted && typeof image === 'string' && tree.behaviour.slotRefusesUrl(String(slot['Id']))) {
      return send(res, 400, redfishError(400, 'Base.1.8.ActionNotSupported', `Slot ${String(slot['Id'])} holds files uploaded through the web interface only.`));
    }
    if (inserted) {
      if (typeof image !== 'string' || image === '') return send(res, 400, redfishError(400, 'Base.1.8.PropertyMissing', 'The property Image is a required property.'));
      if (faults.mediaIgnored) return send(res, 204);
      slot['Image'] = image;
      slot['ImageName'] = image.split('/').pop() ?? image;
      slot['Inserted'] = true;
      slot['ConnectedVia'] = 'URI';
    } else {
      slot['Image'] = null;
      slot['ImageName'] = null;
      slot['Inserted'] = false;
      slot['ConnectedVia'] = 'NotConnected';
    }
    options.onVirtualMedia?.(slotPath, inserted ? (image as string) : null);
    send(res, 204);
  };

  const authenticate = (req: IncomingMessage): string | undefined => {
    const token = req.headers['x-auth-token'];
    if (typeof token === 'string') return sessions.has(token) ? 'session' : undefined;
    const basic = req.headers.authorization;
    if (basic?.startsWith('Basic ')) {
      const [user, ...rest] = Buffer.from(basic.slice(6), 'base64').toString('utf8').split(':');
      if (user === username && rest.join(':') === password) return 'basic';
      state.failedLogins++;
    }
    return undefined;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://peer');
    const path = decodeURIComponent(url.pathname);
    const key = pathKey(path);
    const method = req.method ?? 'GET';
    const auth = typeof req.headers['x-auth-token'] === 'string' ? 'session' : req.headers.authorization ? 'basic' : 'none';
    faults.requests.push({ method, path, auth });
    if (await faults.apply(res, (status) => redfishError(status, 'Base.1.8.InternalError', 'The request failed due to an internal service error.'))) return;
    const raw = await readBody(req);
    let body: Json = {};
    if (raw.trim()) {
      try {
        body = JSON.parse(raw) as Json;
      } catch {
        return send(res, 400, redfishError(400, 'Base.1.8.MalformedJSON', 'The request body submitted was malformed JSON.'));
      }
    }

    // The service root is readable without authentication (DSP0266).
    if (method === 'GET' && (key === pathKey('/redfish/v1') || key === '/redfish')) {
      return send(res, 200, key === '/redfish' ? { v1: '/redfish/v1/' } : byKey.get(pathKey('/redfish/v1')));
    }
    if (sessionService && method === 'POST' && key === pathKey('/redfish/v1/SessionService/Sessions')) {
      if (body['UserName'] !== username || body['Password'] !== password) {
        state.failedLogins++;
        return send(res, 401, redfishError(401, 'Base.1.8.NoValidSession', 'There is no valid session established with the implementation.'));
      }
      const token = randomBytes(16).toString('hex');
      const id = randomBytes(6).toString('hex');
      const sessionPath = `/redfish/v1/SessionService/Sessions/${id}`;
      sessions.set(token, sessionPath);
      state.sessionsCreated++;
      const location = tree.behaviour.absoluteSessionLocation ? `${baseUrl}${sessionPath}/` : sessionPath;
      return send(res, 201, { '@odata.id': sessionPath, Id: id, Name: 'User Session', UserName: username }, { 'x-auth-token': token, location });
    }

    const authMethod = authenticate(req);
    if (!authMethod) return send(res, 401, redfishError(401, 'Base.1.8.NoValidSession', 'There is no valid session established with the implementation.'));

    if (method === 'DELETE' && key.startsWith(pathKey('/redfish/v1/SessionService/Sessions/'))) {
      for (const [token, sessionPath] of sessions) {
        if (pathKey(sessionPath) === key) {
          sessions.delete(token);
          state.sessionsDeleted++;
          return send(res, 204);
        }
      }
      return send(res, 404, redfishError(404, 'Base.1.8.ResourceMissingAtURI', `The resource at the URI ${path} was not found.`));
    }

    if (method === 'GET') {
      if (key === pathKey('/redfish/v1/SessionService/Sessions')) {
        const list = [...sessions.values()].map((p) => ({ '@odata.id': p }));
        return send(res, 200, { '@odata.id': '/redfish/v1/SessionService/Sessions', Name: 'Session Collection', Members: list, 'Members@odata.count': list.length });
      }
      const resource = byKey.get(key);
      if (!resource) return send(res, 404, redfishError(404, 'Base.1.8.ResourceMissingAtURI', `The resource at the URI ${path} was not found.`));
      if (resource === system && transition.reads > 0) {
        transition.reads--;
        return send(res, 200, { ...resource, PowerState: transition.shown });
      }
      return send(res, 200, resource);
    }

    if (method === 'PATCH') {
      const resource = byKey.get(key);
      if (!resource) return send(res, 404, redfishError(404, 'Base.1.8.ResourceMissingAtURI', `The resource at the URI ${path} was not found.`));
      if (resource === system && body['Boot'] && typeof body['Boot'] === 'object') return applyBootPatch(res, body['Boot'] as Json);
      if (Array.isArray(resource['MediaTypes'])) {
        const inserted = body['Inserted'] === undefined ? typeof body['Image'] === 'string' : body['Inserted'] === true;
        return applyMedia(res, path, resource, body['Image'], inserted);
      }
      return send(res, 405, redfishError(405, 'Base.1.8.OperationNotAllowed', 'PATCH is not supported on this resource here.'));
    }

    if (method === 'POST') {
      if (key.endsWith('/actions/computersystem.reset') && key.startsWith(pathKey(tree.systemPath))) return applyReset(res, body);
      const media = key.match(/^(.*)\/actions\/virtualmedia\.(insertmedia|ejectmedia)$/);
      if (media) {
        const slot = byKey.get(media[1]!);
        if (!slot) return send(res, 404, redfishError(404, 'Base.1.8.ResourceMissingAtURI', `The resource at the URI ${path} was not found.`));
        return media[2] === 'insertmedia' ? applyMedia(res, path, slot, body['Image'], body['Inserted'] !== false) : applyMedia(res, path, slot, null, false);
      }
      return send(res, 404, redfishError(404, 'Base.1.8.ResourceMissingAtURI', `The resource at the URI ${path} was not found.`));
    }
    send(res, 405, redfishError(405, 'Base.1.8.OperationNotAllowed', `${method} is not allowed here.`));
  };

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, redfishError(500, 'Base.1.8.InternalError', String(err)));
    });
  };
  const server: Server = cert ? createHttpsServer({ cert: cert.cert, key: cert.key }, listener) : createHttpServer(listener);
  const port = await listenOnLoopback(server);
  baseUrl = `${cert ? 'https' : 'http'}://127.0.0.1:${port}`;

  return {
    url: baseUrl,
    caCert: cert?.cert,
    variant,
    systemPath: tree.systemPath,
    systemId,
    faults,
    resource: (p) => byKey.get(pathKey(p)),
    system: () => system,
    openSessions: () => sessions.size,
    expireSessions: () => sessions.clear(),
    setPassword: (p) => {
      password = p;
      sessions.clear();
    },
    insertedImage: () => {
      for (const r of byKey.values()) {
        const types = r['MediaTypes'];
        if (Array.isArray(types) && types.some((t) => t === 'CD' || t === 'DVD') && r['Inserted'] === true) return (r['Image'] as string | null) ?? null;
      }
      return null;
    },
    get sessionsCreated() {
      return state.sessionsCreated;
    },
    get sessionsDeleted() {
      return state.sessionsDeleted;
    },
    get failedLogins() {
      return state.failedLogins;
    },
    resets,
    close: async () => {
      faults.hang(false);
      await closeServer(server);
    },
  };
}
