import { Agent, type Dispatcher } from 'undici';
import { PlinthError } from '../core/errors.js';

/**
 * The few NetBox 4.x REST calls a sync needs (https://netboxlabs.com/docs/netbox/integrations/rest-api/):
 * devices by filter, their MAC addresses (objects of their own since NetBox 4.2), and a PATCH
 * of a device's custom fields. Lists are paginated with `limit`/`offset`; each page says the
 * `next` one. Nothing here touches the database.
 */

/** A device as NetBox answers it (only the fields a sync reads). */
export interface NetboxDevice {
  id: number;
  name: string | null;
  serial: string;
  asset_tag: string | null;
  site?: { slug: string } | null;
  role?: { slug: string } | null;
  primary_ip?: { address: string } | null;
  custom_fields?: Record<string, unknown>;
}

export interface NetboxMacAddress {
  mac_address: string;
  assigned_object_type: string | null;
  assigned_object?: { device?: { id: number } } | null;
}

export interface NetboxOptions {
  url: string;
  token: string;
  insecure?: boolean;
  timeoutMs?: number;
}

/** Devices per page asked for (NetBox caps it at its MAX_PAGE_SIZE, 1000 by default, and says `next`). */
const PAGE = 500;
/** Device ids per MAC address query (they go in the URL). */
const IDS_PER_QUERY = 100;

export class NetboxClient {
  private readonly base: URL;
  private readonly authorization: string;
  private readonly dispatcher: Dispatcher | null;
  private readonly timeoutMs: number;

  constructor(o: NetboxOptions) {
    this.base = new URL(o.url.endsWith('/') ? o.url : `${o.url}/`);
    // NetBox 4.5's v2 tokens (`nbt_KEY.SECRET`) are Bearer tokens; older ones go as `Token`.
    this.authorization = o.token.startsWith('nbt_') ? `Bearer ${o.token}` : `Token ${o.token}`;
    this.dispatcher = o.insecure ? new Agent({ connect: { rejectUnauthorized: false } }) : null;
    this.timeoutMs = o.timeoutMs ?? 30_000;
  }

  async close(): Promise<void> {
    await this.dispatcher?.close();
  }

  /** Devices matching the filter (site, role, tag slugs), every page. */
  async devices(filter: { site?: string; role?: string; tag?: string }): Promise<NetboxDevice[]> {
    const q = new URLSearchParams({ limit: String(PAGE), offset: '0', ordering: 'id' });
    for (const k of ['site', 'role', 'tag'] as const) if (filter[k]) q.append(k, filter[k]!);
    return this.list<NetboxDevice>(`api/dcim/devices/?${q}`);
  }

  /** MAC addresses assigned to the devices' interfaces, by device id. */
  async macsByDevice(deviceIds: number[]): Promise<Map<number, string[]>> {
    const out = new Map<number, string[]>();
    for (let i = 0; i < deviceIds.length; i += IDS_PER_QUERY) {
      const q = new URLSearchParams({ limit: String(PAGE), offset: '0', assigned_object_type: 'dcim.interface' });
      for (const id of deviceIds.slice(i, i + IDS_PER_QUERY)) q.append('device_id', String(id));
      for (const m of await this.list<NetboxMacAddress>(`api/dcim/mac-addresses/?${q}`)) {
        const device = m.assigned_object?.device?.id;
        if (device === undefined) continue;
        out.set(device, [...(out.get(device) ?? []), m.mac_address]);
      }
    }
    return out;
  }

  /** Sets custom fields of a device (the others are kept: NetBox merges `custom_fields`). */
  async setCustomFields(deviceId: number, fields: Record<string, string | null>): Promise<void> {
    await this.call('PATCH', `api/dcim/devices/${deviceId}/`, { custom_fields: fields });
  }

  private async list<T>(first: string): Promise<T[]> {
    const out: T[] = [];
    let path: string | null = first;
    for (let pages = 0; path !== null; pages++) {
      if (pages > 10_000) throw new PlinthError('provider_failed', 'netbox: more than 10000 pages; narrow netbox.filter');
      const page = (await this.call('GET', path)) as { results?: T[]; next?: string | null };
      if (!Array.isArray(page.results)) throw new PlinthError('provider_failed', `netbox: ${pathOnly(path)} answered no results list (is netbox.url NetBox's address?)`);
      out.push(...page.results);
      path = page.next ? this.onBase(page.next) : null;
    }
    return out;
  }

  /**
   * NOTE: `next` is an absolute URL built from what NetBox believes its address is, which
   * behind a proxy is often another scheme or host. The path and query are taken onto the
   * configured address, so the token never goes anywhere else.
   */
  private onBase(next: string): string {
    const u = new URL(next, this.base);
    const path = u.pathname.startsWith(this.base.pathname) ? u.pathname.slice(this.base.pathname.length) : u.pathname.replace(/^\//, '');
    return `${path}${u.search}`;
  }

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const url = new URL(path, this.base);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: this.authorization, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
        ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
      } as RequestInit);
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new PlinthError('provider_failed', `netbox: ${method} ${url.origin}${url.pathname} failed: ${cause?.code ?? cause?.message ?? (e as Error).message}`, { cause: e });
    }
    const text = await res.text();
    if (!res.ok) {
      let detail = text.slice(0, 300);
      try {
        const j = JSON.parse(text) as Record<string, unknown>;
        detail = typeof j['detail'] === 'string' ? j['detail'] : JSON.stringify(j).slice(0, 300);
      } catch {
        // not JSON: the text as it came
      }
      const hint = res.status === 401 || res.status === 403 ? ' (check netbox.token and its permissions)' : '';
      throw new PlinthError('provider_failed', `netbox: ${method} ${pathOnly(path)} answered ${res.status}: ${detail}${hint}`, { details: { status: res.status } });
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new PlinthError('provider_failed', `netbox: ${method} ${pathOnly(path)} answered something that is not JSON (is netbox.url NetBox's address?)`);
    }
  }
}

const pathOnly = (path: string) => `/${path.split('?')[0]}`;
