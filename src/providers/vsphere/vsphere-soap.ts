/**
 * The vSphere Web Services (SOAP, vim25) API at `/sdk`, which every vCenter and ESXi
 * serves: Login (session cookie), RetrievePropertiesEx through a ContainerView,
 * Power*VM_Task / ResetVM_Task / ShutdownGuest, ReconfigVM_Task, and task polling.
 * Used where the Automation REST API is absent (vCenter before 7.0 U2, ESXi, govmomi's
 * simulator) or lacks a property.
 */
import { XMLParser } from 'fast-xml-parser';
import { abortableSleep } from '../call-deadline.js';
import { EndpointHttpClient, redact } from '../endpoint-http.js';
import { ProviderError, type Endpoint, type ProviderContext, type ProviderFailure } from '../types.js';

export const VSPHERE = 'vsphere';
const TASK_POLL_MS = 200;

export interface MoRef {
  type: string;
  value: string;
}

/** One object of a RetrievePropertiesEx answer: its reference and its properties by path. */
export interface ObjectContent {
  obj: MoRef;
  props: Record<string, unknown>;
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  isArray: (name) => ['objects', 'propSet', 'VirtualDevice', 'ManagedObjectReference', 'VirtualMachineBootOptionsBootableDevice', 'returnval'].includes(name),
});

export function xmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

export function moRefXml(tag: string, ref: MoRef): string {
  return `<${tag} type="${xmlEscape(ref.type)}">${xmlEscape(ref.value)}</${tag}>`;
}

export function asArray<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** Text of a parsed element that may carry attributes (`{ '#text': …, '@_type': … }`). */
export function textOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && '#text' in value) return String((value as { '#text': unknown })['#text']);
  return undefined;
}

export function moRefOf(value: unknown): MoRef | undefined {
  const text = textOf(value);
  const type = value && typeof value === 'object' ? (value as { '@_type'?: unknown })['@_type'] : undefined;
  return text && typeof type === 'string' ? { type, value: text } : undefined;
}

/** SOAP fault detail types → failure classes. */
const FAULTS: Array<[RegExp, ProviderFailure]> = [
  [/InvalidLogin|NotAuthenticated|NoPermission|InvalidLocale/, 'auth'],
  [/ManagedObjectNotFound|NotFound/, 'not-found'],
  [/NotSupported|NotImplemented|MethodNotFound/, 'unsupported'],
  [/TaskInProgress|ResourceInUse|ConcurrentAccess|HostCommunication|Timedout|RequestCanceled/, 'transient'],
];

/**
 * The server no longer knows our session (a vCenter restart or upgrade, an idle session
 * reaped): distinct from refused credentials, because logging in again cures it.
 */
export class SessionLostError extends ProviderError {
  constructor(message: string) {
    super(VSPHERE, 'auth', message);
    this.name = 'SessionLostError';
  }
}

/**
 * A session refused right after a fresh login: not the credentials (the login worked) but a
 * server that keeps dropping sessions or an account without the privilege to use them.
 */
export function sessionRefusedAgain(host: string, detail: string): ProviderError {
  return new ProviderError(
    VSPHERE,
    'auth',
    `${host}: the session was refused again right after a fresh login; the account may lack the privileges or the server may be restarting: ${detail}`,
  );
}

/** Reads a `missingSet` entry's fault type (`NotAuthenticated`, `NoPermission`, `InvalidProperty`…). */
function missingFault(entry: Record<string, unknown>): string {
  const fault = (entry['fault'] as Record<string, unknown> | undefined)?.['fault'] as Record<string, unknown> | undefined;
  return String(fault?.['@_type'] ?? '');
}

interface ServiceContent {
  sessionManager: MoRef;
  propertyCollector: MoRef;
  viewManager: MoRef;
  rootFolder: MoRef;
}

export class VsphereSoapClient {
  private readonly http: EndpointHttpClient;
  private readonly endpoint: Endpoint;
  private readonly soapAction: string;
  private cookie: string | undefined;
  private content: ServiceContent | undefined;
  private login: Promise<void> | undefined;

  constructor(endpoint: Endpoint, http: EndpointHttpClient) {
    this.endpoint = endpoint;
    this.http = http;
    const version = endpoint.options?.['soapVersion'];
    this.soapAction = `urn:vim25/${typeof version === 'string' ? version : '7.0'}`;
  }

  /** Sends one vim25 call; resolves with the parsed `<…Response>` element's content. */
  async call(method: string, bodyXml: string, ctx: ProviderContext): Promise<Record<string, unknown>> {
    const envelope =
      '<?xml version="1.0" encoding="UTF-8"?>' +
      '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">' +
      `<soapenv:Body><${method} xmlns="urn:vim25">${bodyXml}</${method}></soapenv:Body></soapenv:Envelope>`;
    const headers: Record<string, string> = { 'content-type': 'text/xml; charset=utf-8', soapaction: this.soapAction };
    if (this.cookie) headers['cookie'] = this.cookie;
    const res = await this.http.request('POST', '/sdk', { headers, body: envelope, ctx });
    const setCookie = res.headers['set-cookie'];
    if (setCookie) {
      const session = /vmware_soap_session=("?[^";]+"?)/.exec(setCookie);
      if (session) this.cookie = `vmware_soap_session=${session[1]}`;
    }
    const doc = (() => {
      try {
        return parser.parse(res.text) as Record<string, unknown>;
      } catch {
        return undefined;
      }
    })();
    const body = (doc?.['Envelope'] as Record<string, unknown> | undefined)?.['Body'] as Record<string, unknown> | undefined;
    if (!body) {
      const failure: ProviderFailure = res.status === 404 ? 'unsupported' : res.status >= 500 ? 'transient' : 'protocol';
      throw new ProviderError(VSPHERE, failure, `${this.http.baseUrl.host}: ${method}: no SOAP answer (HTTP ${res.status})`);
    }
    const fault = body['Fault'] as Record<string, unknown> | undefined;
    if (fault) {
      const detailObj = fault['detail'] as Record<string, unknown> | undefined;
      const detailType = detailObj ? Object.entries(detailObj).map(([k, v]) => `${k} ${String((v as Record<string, unknown>)?.['@_type'] ?? '')}`).join(' ') : '';
      const faultString = redact(String(textOf(fault['faultstring']) ?? 'SOAP fault'), [this.endpoint.password]);
      if (/NotAuthenticated/.test(`${detailType} ${faultString}`)) throw new SessionLostError(`${this.http.baseUrl.host}: ${method}: the session is no longer valid (${faultString})`);
      const failure = FAULTS.find(([pattern]) => pattern.test(`${detailType} ${faultString}`))?.[1] ?? 'protocol';
      const hint = failure === 'auth' ? ' (check the user name and password)' : '';
      throw new ProviderError(VSPHERE, failure, `${this.http.baseUrl.host}: ${method}: ${faultString}${hint}`);
    }
    return (body[`${method}Response`] as Record<string, unknown> | undefined) ?? {};
  }

  private async serviceContent(ctx: ProviderContext): Promise<ServiceContent> {
    if (this.content) return this.content;
    const res = await this.call('RetrieveServiceContent', '<_this type="ServiceInstance">ServiceInstance</_this>', ctx);
    const rv = asArray(res['returnval'])[0] as Record<string, unknown> | undefined;
    const pick = (name: string): MoRef => {
      const ref = moRefOf(rv?.[name]);
      if (!ref) throw new ProviderError(VSPHERE, 'protocol', `${this.http.baseUrl.host}: service content has no ${name}`);
      return ref;
    };
    this.content = { sessionManager: pick('sessionManager'), propertyCollector: pick('propertyCollector'), viewManager: pick('viewManager'), rootFolder: pick('rootFolder') };
    return this.content;
  }

  /** Logs in once (concurrent callers share the login). */
  async ensureSession(ctx: ProviderContext): Promise<void> {
    if (this.cookie) return;
    this.login ??= (async () => {
      const content = await this.serviceContent(ctx);
      await this.call(
        'Login',
        `${moRefXml('_this', content.sessionManager)}<userName>${xmlEscape(this.endpoint.username ?? '')}</userName><password>${xmlEscape(this.endpoint.password ?? '')}</password>`,
        ctx,
      );
      if (!this.cookie) throw new ProviderError(VSPHERE, 'protocol', `${this.http.baseUrl.host}: Login answered without a session cookie`);
    })().finally(() => {
      this.login = undefined;
    });
    await this.login;
  }

  /**
   * Runs `op` in a session. When the server has forgotten the session, logs in again once
   * and repeats `op`; a second loss right after a fresh login is an auth failure that says so.
   * `op` must be safe to repeat: it failed before the server acted on it.
   */
  private async withSession<T>(ctx: ProviderContext, op: () => Promise<T>): Promise<T> {
    await this.ensureSession(ctx);
    const used = this.cookie;
    try {
      return await op();
    } catch (err) {
      if (!(err instanceof SessionLostError)) throw err;
      ctx.log.info('vsphere: the session was lost; logging in again', { host: this.http.baseUrl.host });
      // Concurrent callers may have logged in anew already: drop only the session that failed.
      if (this.cookie === used) this.cookie = undefined;
      await this.ensureSession(ctx);
      try {
        return await op();
      } catch (again) {
        if (!(again instanceof SessionLostError)) throw again;
        throw sessionRefusedAgain(this.http.baseUrl.host, again.message);
      }
    }
  }

  /** One vim25 call in a session (re-established once if the server forgot it). */
  invoke(method: string, bodyXml: string, ctx: ProviderContext): Promise<Record<string, unknown>> {
    return this.withSession(ctx, () => this.call(method, bodyXml, ctx));
  }

  async logout(ctx: ProviderContext): Promise<void> {
    if (!this.cookie || !this.content) return;
    try {
      await this.call('Logout', moRefXml('_this', this.content.sessionManager), ctx);
    } finally {
      this.cookie = undefined;
    }
  }

  /** Properties of every object of `type` under the root folder (via a ContainerView). */
  retrieveAll(type: string, paths: string[], ctx: ProviderContext): Promise<ObjectContent[]> {
    return this.withSession(ctx, () => this.retrieveAllOnce(type, paths, ctx));
  }

  private async retrieveAllOnce(type: string, paths: string[], ctx: ProviderContext): Promise<ObjectContent[]> {
    const content = await this.serviceContent(ctx);
    const view = await this.call(
      'CreateContainerView',
      `${moRefXml('_this', content.viewManager)}${moRefXml('container', content.rootFolder)}<type>${xmlEscape(type)}</type><recursive>true</recursive>`,
      ctx,
    );
    const viewRef = moRefOf(asArray(view['returnval'])[0]);
    if (!viewRef) throw new ProviderError(VSPHERE, 'protocol', 'CreateContainerView returned no view');
    try {
      const objectSet =
        `<objectSet>${moRefXml('obj', viewRef)}<skip>true</skip>` +
        '<selectSet xsi:type="TraversalSpec"><name>view</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet>';
      return await this.retrieve(type, paths, objectSet, ctx);
    } finally {
      await this.call('DestroyView', moRefXml('_this', viewRef), ctx).catch(() => undefined);
    }
  }

  /** Properties of one object. */
  async retrieveOne(ref: MoRef, paths: string[], ctx: ProviderContext): Promise<Record<string, unknown>> {
    const objects = await this.withSession(ctx, () => this.retrieve(ref.type, paths, `<objectSet>${moRefXml('obj', ref)}<skip>false</skip></objectSet>`, ctx));
    const found = objects[0];
    if (!found) throw new ProviderError(VSPHERE, 'not-found', `${this.http.baseUrl.host}: no ${ref.type} ${ref.value}`);
    return found.props;
  }

  private async retrieve(type: string, paths: string[], objectSetXml: string, ctx: ProviderContext): Promise<ObjectContent[]> {
    const content = await this.serviceContent(ctx);
    const propSet = `<propSet><type>${xmlEscape(type)}</type>${paths.map((p) => `<pathSet>${xmlEscape(p)}</pathSet>`).join('')}</propSet>`;
    let res = await this.call('RetrievePropertiesEx', `${moRefXml('_this', content.propertyCollector)}<specSet>${propSet}${objectSetXml}</specSet><options></options>`, ctx);
    const out: ObjectContent[] = [];
    for (;;) {
      const rv = asArray(res['returnval'])[0] as Record<string, unknown> | undefined;
      for (const object of asArray(rv?.['objects']) as Array<Record<string, unknown>>) {
        const obj = moRefOf(object['obj']);
        if (!obj) continue;
        const props: Record<string, unknown> = {};
        for (const p of asArray(object['propSet']) as Array<Record<string, unknown>>) props[String(p['name'])] = p['val'];
        this.checkMissing(obj, asArray(object['missingSet']) as Array<Record<string, unknown>>);
        out.push({ obj, props });
      }
      const token = textOf(rv?.['token']);
      if (!token) return out;
      res = await this.call('ContinueRetrievePropertiesEx', `${moRefXml('_this', content.propertyCollector)}<token>${xmlEscape(token)}</token>`, ctx);
    }
  }

  /**
   * A property the collector could not read is reported in `missingSet` with a fault, not
   * as an error: without this check a lost session or a missing privilege reads as an
   * absent property (a VM's power state `unknown`). Those faults raise; others (a property
   * this server version lacks) leave the property absent.
   */
  private checkMissing(obj: MoRef, missing: Array<Record<string, unknown>>): void {
    for (const entry of missing) {
      const fault = missingFault(entry);
      const path = textOf(entry['path']) ?? '?';
      if (/NotAuthenticated/.test(fault)) throw new SessionLostError(`${this.http.baseUrl.host}: reading ${obj.value} ${path}: the session is no longer valid`);
      if (/NoPermission/.test(fault))
        throw new ProviderError(VSPHERE, 'auth', `${this.http.baseUrl.host}: reading ${obj.value} ${path}: permission denied (${fault}); grant the account read access to it`);
    }
  }

  /** Calls a `*_Task` method and waits for the task to succeed. */
  async runTask(method: string, bodyXml: string, ctx: ProviderContext): Promise<void> {
    const res = await this.invoke(method, bodyXml, ctx);
    const task = moRefOf(asArray(res['returnval'])[0]);
    if (!task) return;
    const deadline = Date.now() + ctx.timeoutMs;
    for (;;) {
      const info = await this.retrieveOne(task, ['info.state', 'info.error'], ctx);
      const state = textOf(info['info.state']);
      if (state === 'success') return;
      if (state === 'error') {
        const error = info['info.error'] as Record<string, unknown> | undefined;
        const message = textOf(error?.['localizedMessage']) ?? String((error?.['fault'] as Record<string, unknown> | undefined)?.['@_type'] ?? 'task failed');
        const faultType = String((error?.['fault'] as Record<string, unknown> | undefined)?.['@_type'] ?? '');
        const failure = FAULTS.find(([pattern]) => pattern.test(faultType))?.[1] ?? 'protocol';
        throw new ProviderError(VSPHERE, failure, `${this.http.baseUrl.host}: ${method} failed: ${message}`);
      }
      if (Date.now() + TASK_POLL_MS > deadline) throw new ProviderError(VSPHERE, 'timeout', `${this.http.baseUrl.host}: ${method} still running after ${ctx.timeoutMs} ms`);
      await abortableSleep(TASK_POLL_MS, ctx.signal);
    }
  }
}
