/**
 * A fake NetBox 4.x (NetBox is a Django application with PostgreSQL and Redis: it cannot run
 * here). It follows the documented REST API for the paths Plinth uses
 * (https://netboxlabs.com/docs/netbox/integrations/rest-api/):
 *
 *   GET   /api/dcim/devices/?site=&role=&tag=&limit=&offset=   → {count, next, previous, results}
 *   GET   /api/dcim/mac-addresses/?device_id=…&assigned_object_type=dcim.interface
 *         (MAC addresses are objects of their own since NetBox 4.2)
 *   PATCH /api/dcim/devices/{id}/  {custom_fields: {…}}        → the device (custom fields merged)
 *
 * Authentication: `Authorization: Bearer nbt_KEY.SECRET` (NetBox 4.5's v2 tokens); a missing
 * or wrong token gets 403 with `detail`, as NetBox answers. Pagination: `limit` (default 50,
 * capped at `maxPageSize` like NetBox's MAX_PAGE_SIZE) and `offset`, with `next` an absolute
 * URL on `advertisedOrigin` (NetBox builds it from what it believes its own address is).
 * Custom fields must be defined before a PATCH sets them, like NetBox's.
 */
import { createServer, type Server } from 'node:http';
import { closeServer, listenOnLoopback, readBody } from './peer-faults.js';

export interface FakeDevice {
  id: number;
  name: string | null;
  serial?: string;
  asset_tag?: string | null;
  site: string;
  role: string;
  tags?: string[];
  primary_ip?: string | null;
  custom_fields?: Record<string, unknown>;
  /** MAC addresses on the device's interfaces. */
  macs?: string[];
}

export interface NetboxPeer {
  url: string;
  token: string;
  /** Every request: method, path with query, whether its token was accepted. */
  requests: Array<{ method: string; url: string; authorized: boolean }>;
  device(id: number): FakeDevice;
  update(id: number, changes: Partial<FakeDevice>): void;
  close(): Promise<void>;
}

export async function startNetbox(o: {
  devices: FakeDevice[];
  maxPageSize?: number;
  customFields?: string[];
  advertisedOrigin?: string;
}): Promise<NetboxPeer> {
  const token = 'nbt_4Kq9Xn2L0aZf.7f3c1e9a0b5d4c2e8f6a1b3c5d7e9f0a2b4c6d8e';
  const devices = o.devices.map((d) => ({ ...d, custom_fields: { ...(d.custom_fields ?? {}) } }));
  const customFields = new Set([...(o.customFields ?? []), ...devices.flatMap((d) => Object.keys(d.custom_fields))]);
  const maxPageSize = o.maxPageSize ?? 1000;
  const requests: NetboxPeer['requests'] = [];
  let origin = '';

  const present = (d: FakeDevice) => ({
    id: d.id,
    url: `${origin}/api/dcim/devices/${d.id}/`,
    display: d.name ?? `Unnamed device (${d.id})`,
    name: d.name,
    serial: d.serial ?? '',
    asset_tag: d.asset_tag ?? null,
    site: { id: 1, url: `${origin}/api/dcim/sites/1/`, display: d.site, name: d.site, slug: d.site },
    role: { id: 1, url: `${origin}/api/dcim/device-roles/1/`, display: d.role, name: d.role, slug: d.role },
    tags: (d.tags ?? []).map((t, i) => ({ id: i + 1, name: t, slug: t })),
    primary_ip: d.primary_ip ? { id: d.id, family: { value: 4, label: 'IPv4' }, address: d.primary_ip } : null,
    custom_fields: Object.fromEntries([...customFields].map((k) => [k, d.custom_fields?.[k] ?? null])),
  });
  const macObjects = () =>
    devices.flatMap((d) =>
      (d.macs ?? []).map((mac, i) => ({
        id: d.id * 100 + i,
        mac_address: mac.toUpperCase(),
        assigned_object_type: 'dcim.interface',
        assigned_object_id: d.id * 100 + i,
        assigned_object: { id: d.id * 100 + i, name: `eno${i + 1}`, device: { id: d.id, name: d.name } },
      })),
    );

  const send = (res: import('node:http').ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const page = (res: import('node:http').ServerResponse, url: URL, all: unknown[]) => {
    const limit = Math.min(Number(url.searchParams.get('limit') ?? 50) || 50, maxPageSize);
    const offset = Number(url.searchParams.get('offset') ?? 0);
    const at = (off: number) => {
      const u = new URL(url.pathname + url.search, o.advertisedOrigin ?? origin);
      u.searchParams.set('limit', String(limit));
      u.searchParams.set('offset', String(off));
      return u.toString();
    };
    send(res, 200, {
      count: all.length,
      next: offset + limit < all.length ? at(offset + limit) : null,
      previous: offset > 0 ? at(Math.max(0, offset - limit)) : null,
      results: all.slice(offset, offset + limit),
    });
  };

  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', origin);
      const auth = req.headers.authorization;
      const authorized = auth === `Bearer ${token}`;
      requests.push({ method: req.method ?? '', url: url.pathname + url.search, authorized });
      if (!auth) return send(res, 403, { detail: 'Authentication credentials were not provided.' });
      if (!authorized) return send(res, 403, { detail: 'Invalid v2 token' });
      const body = req.method === 'PATCH' ? await readBody(req) : '';
      if (req.method === 'GET' && url.pathname === '/api/dcim/devices/') {
        const q = url.searchParams;
        const list = devices
          .filter((d) => (!q.get('site') || d.site === q.get('site')) && (!q.get('role') || d.role === q.get('role')) && (!q.get('tag') || (d.tags ?? []).includes(q.get('tag')!)))
          .sort((a, b) => a.id - b.id)
          .map(present);
        return page(res, url, list);
      }
      if (req.method === 'GET' && url.pathname === '/api/dcim/mac-addresses/') {
        const ids = url.searchParams.getAll('device_id').map(Number);
        const type = url.searchParams.get('assigned_object_type');
        return page(res, url, macObjects().filter((m) => (ids.length === 0 || ids.includes(m.assigned_object.device.id)) && (!type || m.assigned_object_type === type)));
      }
      const m = /^\/api\/dcim\/devices\/(\d+)\/$/.exec(url.pathname);
      if (req.method === 'PATCH' && m) {
        const d = devices.find((x) => x.id === Number(m[1]));
        if (!d) return send(res, 404, { detail: 'No Device matches the given query.' });
        let patch: { custom_fields?: Record<string, unknown> };
        try {
          patch = JSON.parse(body) as typeof patch;
        } catch {
          return send(res, 400, { detail: 'JSON parse error' });
        }
        const unknown = Object.keys(patch.custom_fields ?? {}).filter((k) => !customFields.has(k));
        if (unknown.length) return send(res, 400, { custom_fields: [`Unknown field name '${unknown[0]}' in custom field data.`] });
        Object.assign(d.custom_fields, patch.custom_fields ?? {});
        return send(res, 200, present(d));
      }
      send(res, 404, { detail: 'Not found.' });
    })();
  });
  const port = await listenOnLoopback(server);
  origin = `http://127.0.0.1:${port}`;
  return {
    url: origin,
    token,
    requests,
    device: (id) => devices.find((d) => d.id === id)!,
    update: (id, changes) => Object.assign(devices.find((d) => d.id === id)!, changes),
    close: () => closeServer(server),
  };
}
