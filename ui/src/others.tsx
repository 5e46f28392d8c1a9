import { useMemo, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import type { ProfileView, PoolView, PoolEntryView } from '../../src/profiles/schemas.js';
import type { TokenView } from '../../src/api/client-core.js';
import { can, clientFor, type Session } from './session.js';
import { Choice, ErrorNote, Link, SimpleTable, bytes, messageOf, useLoad, when } from './util.js';

interface ImageView {
  name: string;
  kind: string;
  /** Disk images: whole-disk, or partition (one file system, for the console's keep-partitions). */
  layout: string | null;
  sourceFormat: string;
  sizeBytes: number;
  sha256: string;
  createdAt: string;
}
interface ApplianceView {
  name: string;
  type: string;
  address: string;
  site: string | null;
  health: string;
  healthError: string | null;
}

const useClient = (s: Session) => useMemo(() => clientFor(s.token), [s.token]);

/** A read-only page listing one collection of the API. */
function ListPage<T>(props: { session: Session; title: string; path: string; columns: [string, (row: T) => string | number][] }) {
  const client = useClient(props.session);
  const list = useLoad(() => client.request<{ items: T[] }>('GET', props.path), [client, props.path]);
  return (
    <main>
      <h1>{props.title}</h1>
      <ErrorNote error={list.error} />
      {list.data && <SimpleTable label={props.title} rows={list.data.items} columns={props.columns} />}
    </main>
  );
}

export const ProfilesPage = ({ session }: { session: Session }) => (
  <ListPage<ProfileView>
    session={session}
    title="Profiles"
    path="/api/v1/profiles"
    columns={[
      ['Name', (p) => p.name],
      ['Order', (p) => p.position],
      ['Quota', (p) => (p.quota === null ? 'unlimited' : `${p.held} held of ${p.quota}`)],
      ['Pool', (p) => p.pool ?? ''],
      ['Image', (p) => (p.deploy as { image?: string } | null)?.image ?? ''],
      ['Description', (p) => p.description ?? ''],
    ]}
  />
);

/** A pool's entries in order, with the machine holding each (first 500). */
function PoolEntries({ session, pool }: { session: Session; pool: string }) {
  const client = useClient(session);
  const entries = useLoad(
    () => client.request<{ items: PoolEntryView[]; nextCursor: string | null }>('GET', `/api/v1/pools/${encodeURIComponent(pool)}/entries`, undefined, { limit: 500 }),
    [client, pool],
  );
  return (
    <>
      <ErrorNote error={entries.error} />
      {entries.data && (
        <SimpleTable
          label={`Entries of ${pool}`}
          rows={entries.data.items}
          columns={[
            ['#', (e) => e.position],
            ['Values', (e) => Object.entries(e.data).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')],
            ['Held by', (e) => (e.machine ? <Link href={`/machines/${encodeURIComponent(e.machine.name)}`}>{e.machine.name}</Link> : e.used ? 'used' : 'free')],
            ['Since', (e) => when(e.allocatedAt)],
          ]}
        />
      )}
      {entries.data?.nextCursor && <p>Only the first 500 entries are shown (plinth pool show lists all).</p>}
    </>
  );
}

export function PoolsPage({ session }: { session: Session }) {
  const client = useClient(session);
  const list = useLoad(() => client.request<{ items: PoolView[] }>('GET', '/api/v1/pools'), [client]);
  const [open, setOpen] = useState<string | null>(null);
  return (
    <main>
      <h1>Pools</h1>
      <ErrorNote error={list.error} />
      {list.data && (
        <SimpleTable
          label="Pools"
          rows={list.data.items}
          columns={[
            ['Name', (p) => <button aria-expanded={open === p.name} onClick={() => setOpen(open === p.name ? null : p.name)}>{p.name}</button>],
            ['Entries', (p) => p.entries.total],
            ['Held', (p) => p.entries.held],
            ['Free', (p) => p.entries.free],
            ['Profiles', (p) => p.profiles.join(', ')],
            ['Description', (p) => p.description ?? ''],
          ]}
        />
      )}
      {open && (
        <section aria-label={`Pool ${open}`}>
          <h2>{open}</h2>
          <PoolEntries session={session} pool={open} />
        </section>
      )}
    </main>
  );
}

/**
 * Sends a file to the image store with a progress report. XMLHttpRequest, not fetch: only it
 * reports how much of a request body has been sent.
 */
function uploadImage(token: string, file: File, query: Record<string, string>, onProgress: (sent: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/v1/images?${new URLSearchParams(query)}`);
    xhr.setRequestHeader('authorization', `Bearer ${token}`);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      let message = `HTTP ${xhr.status}`;
      try {
        message = (JSON.parse(xhr.responseText) as { error: { message: string } }).error.message;
      } catch {
        /* not the API's error document */
      }
      reject(new Error(message));
    };
    xhr.onerror = () => reject(new Error('the upload was cut off'));
    xhr.send(file);
  });
}

const IMAGE_KINDS = ['disk', 'kernel', 'initrd', 'iso', 'file'];

export function ImagesPage({ session }: { session: Session }) {
  const client = useClient(session);
  const list = useLoad(() => client.request<{ items: ImageView[] }>('GET', '/api/v1/images'), [client]);
  const [progress, setProgress] = useState<{ sent: number; total: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const upload = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const file = data.get('file') as File | null;
    if (!file || !file.size) return setError('file: choose a file to upload');
    const name = String(data.get('name') || '').trim();
    setError(null);
    setDone(null);
    setProgress({ sent: 0, total: file.size });
    try {
      await uploadImage(session.token, file, { name, kind: String(data.get('kind')) }, (sent) => setProgress({ sent, total: file.size }));
      setDone(`${name} uploaded`);
      form.reset();
      void list.reload();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setProgress(null);
    }
  };
  return (
    <main>
      <h1>Images</h1>
      <ErrorNote error={list.error} />
      {list.data && (
        <SimpleTable
          label="Images"
          rows={list.data.items}
          columns={[
            ['Name', (i) => i.name],
            ['Kind', (i) => (i.layout === 'partition' ? 'disk (partition image)' : i.kind)],
            ['Size', (i) => bytes(i.sizeBytes)],
            ['From', (i) => i.sourceFormat],
            ['SHA-256', (i) => i.sha256.slice(0, 16)],
            ['Added', (i) => when(i.createdAt)],
          ]}
        />
      )}
      {can(session, 'operator') && (
        <form class="filters" onSubmit={upload} aria-label="Upload an image">
          <label>
            Image name
            <input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9._\-]*" />
          </label>
          <Choice id="image-kind" label="Kind" name="kind" options={IMAGE_KINDS} />
          <label>
            File
            <input name="file" type="file" required />
          </label>
          <button type="submit" disabled={progress !== null}>
            Upload
          </button>
        </form>
      )}
      {progress && (
        <p>
          <label>
            Uploading {bytes(progress.sent)} of {bytes(progress.total)}
            <progress max={progress.total} value={progress.sent} />
          </label>
        </p>
      )}
      {done && <p role="status">{done}</p>}
      <ErrorNote error={error} />
    </main>
  );
}

const APPLIANCE_TYPES = ['redfish', 'ipmi', 'libvirt', 'proxmox', 'vsphere', 'qemu', 'manual'];

export function AppliancesPage({ session }: { session: Session }) {
  const client = useClient(session);
  const list = useLoad(() => client.request<{ items: ApplianceView[] }>('GET', '/api/v1/appliances'), [client]);
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const operator = can(session, 'operator');
  const register = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const d = new FormData(form);
    const body: Record<string, unknown> = { name: String(d.get('name')).trim(), type: String(d.get('type')), address: String(d.get('address')).trim() };
    for (const k of ['username', 'password'] as const) if (d.get(k)) body[k] = String(d.get(k));
    if (d.get('insecure')) body.insecure = true;
    setError(null);
    setNote(null);
    try {
      await client.request('POST', '/api/v1/appliances', body);
      setNote(`${String(body.name)} registered`);
      form.reset();
      void list.reload();
    } catch (err) {
      setError(messageOf(err));
    }
  };
  const enlist = async (a: ApplianceView) => {
    setBusy(a.name);
    setError(null);
    setNote(null);
    try {
      const r = await client.request<{ items: unknown[] }>('POST', `/api/v1/appliances/${encodeURIComponent(a.name)}/enlist`, {});
      setNote(`${a.name}: ${r.items.length} system(s) enlisted`);
      void list.reload();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(null);
    }
  };
  return (
    <main>
      <h1>Appliances</h1>
      <ErrorNote error={list.error} />
      {list.data && (
        <SimpleTable
          label="Appliances"
          rows={list.data.items}
          columns={[
            ['Name', (a) => a.name],
            ['Type', (a) => a.type],
            ['Address', (a) => a.address],
            ['Site', (a) => a.site ?? 'local'],
            ['Health', (a) => a.health + (a.healthError ? `: ${a.healthError}` : '')],
            ...(operator
              ? ([
                  [
                    '',
                    (a: ApplianceView) => (
                      <button disabled={busy !== null} onClick={() => enlist(a)}>
                        Enlist {a.name}
                      </button>
                    ),
                  ],
                ] as [string, (a: ApplianceView) => ComponentChildren][])
              : []),
          ]}
        />
      )}
      {busy && <p role="status">Enlisting {busy}…</p>}
      {note && <p role="status">{note}</p>}
      <ErrorNote error={error} />
      {operator && (
        <>
          <h2>Register an appliance</h2>
          <form class="filters" onSubmit={register} aria-label="Register an appliance">
            <label>
              Name
              <input name="name" required />
            </label>
            <Choice id="appliance-type" label="Type" name="type" options={APPLIANCE_TYPES} />
            <label>
              Address
              <input name="address" required placeholder="https://bmc.example or host:port" />
            </label>
            <label>
              Username
              <input name="username" autoComplete="off" />
            </label>
            <label>
              Password
              <input name="password" type="password" autoComplete="new-password" />
            </label>
            <label>
              <input name="insecure" type="checkbox" /> Skip certificate check
            </label>
            <button type="submit">Register</button>
          </form>
        </>
      )}
    </main>
  );
}

export function TokensPage({ session }: { session: Session }) {
  const client = useClient(session);
  const list = useLoad(() => client.listTokens(), [client]);
  const [created, setCreated] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const create = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    setError(null);
    try {
      const r = await client.createToken({ name: String(form.get('name')), role: String(form.get('role')) });
      setCreated(r.token);
      (e.target as HTMLFormElement).reset();
      void list.reload();
    } catch (err) {
      setError(messageOf(err));
    }
  };
  const revoke = async (t: TokenView) => {
    setError(null);
    try {
      await client.revokeToken(t.id);
      void list.reload();
    } catch (err) {
      setError(messageOf(err));
    }
  };
  return (
    <main>
      <h1>Tokens</h1>
      <form class="filters" onSubmit={create} aria-label="New token">
        <label>
          Name
          <input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9._\-]*" />
        </label>
        <label>
          Role
          <select name="role">
            <option>reader</option>
            <option>operator</option>
            <option>admin</option>
          </select>
        </label>
        <button type="submit">Create token</button>
      </form>
      {created && (
        <p role="status">
          New token (shown once): <code>{created}</code>
        </p>
      )}
      <ErrorNote error={error ?? list.error} />
      {list.data && (
        <SimpleTable
          label="Tokens"
          rows={list.data.items}
          columns={[
            ['Name', (t) => t.name],
            ['Role', (t) => t.role],
            ['Created', (t) => `${when(t.createdAt)}${t.createdBy ? ` by ${t.createdBy}` : ''}`],
            ['Last used', (t) => when(t.lastUsedAt)],
            ['Expires', (t) => when(t.expiresAt)],
            ['', (t) => (t.revokedAt ? `revoked ${when(t.revokedAt)}` : <button onClick={() => revoke(t)}>Revoke {t.name}</button>)],
          ]}
        />
      )}
    </main>
  );
}

/** Nested settings as dotted names and values: dhcp.mode = off. */
function flatten(value: unknown, prefix = ''): [string, string][] {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
  }
  return [[prefix, typeof value === 'string' ? value : JSON.stringify(value)]];
}

export function SettingsPage({ session }: { session: Session }) {
  const client = useClient(session);
  const health = useLoad(() => client.health(), [client]);
  const settings = useLoad(() => client.settings(), [client]);
  return (
    <main>
      <h1>Settings</h1>
      <ErrorNote error={health.error ?? settings.error} />
      <dl class="fields">
        <dt>Signed in as</dt>
        <dd>
          {session.name} ({session.role})
        </dd>
        <dt>Controller</dt>
        <dd>{health.data ? `${health.data.status}, database ${health.data.database}` : '…'}</dd>
        <dt>API</dt>
        <dd>
          <a href="/api/v1/docs">OpenAPI documentation</a>
        </dd>
      </dl>
      <h2>Configuration</h2>
      <p>Read-only: the controller's configuration file, environment and flags over the defaults (docs/configuration.md). Secrets are not shown.</p>
      {settings.data && (
        <SimpleTable
          label="Configuration"
          rows={flatten(settings.data)}
          columns={[
            ['Setting', ([k]) => <code>{k}</code>],
            ['Value', ([, v]) => v],
          ]}
        />
      )}
    </main>
  );
}
