import { useMemo, useState } from 'preact/hooks';
import type { ProfileView, PoolView } from '../../src/profiles/schemas.js';
import type { TokenView } from '../../src/api/client-core.js';
import { clientFor, type Session } from './session.js';
import { ErrorNote, SimpleTable, bytes, messageOf, useLoad, when } from './util.js';

interface ImageView {
  name: string;
  kind: string;
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

export const PoolsPage = ({ session }: { session: Session }) => (
  <ListPage<PoolView>
    session={session}
    title="Pools"
    path="/api/v1/pools"
    columns={[
      ['Name', (p) => p.name],
      ['Entries', (p) => p.entries.total],
      ['Held', (p) => p.entries.held],
      ['Free', (p) => p.entries.free],
      ['Profiles', (p) => p.profiles.join(', ')],
      ['Description', (p) => p.description ?? ''],
    ]}
  />
);

export const ImagesPage = ({ session }: { session: Session }) => (
  <ListPage<ImageView>
    session={session}
    title="Images"
    path="/api/v1/images"
    columns={[
      ['Name', (i) => i.name],
      ['Kind', (i) => i.kind],
      ['Size', (i) => bytes(i.sizeBytes)],
      ['From', (i) => i.sourceFormat],
      ['SHA-256', (i) => i.sha256.slice(0, 16)],
      ['Added', (i) => when(i.createdAt)],
    ]}
  />
);

export const AppliancesPage = ({ session }: { session: Session }) => (
  <ListPage<ApplianceView>
    session={session}
    title="Appliances"
    path="/api/v1/appliances"
    columns={[
      ['Name', (a) => a.name],
      ['Type', (a) => a.type],
      ['Address', (a) => a.address],
      ['Site', (a) => a.site ?? 'local'],
      ['Health', (a) => a.health + (a.healthError ? `: ${a.healthError}` : '')],
    ]}
  />
);

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

export function SettingsPage({ session }: { session: Session }) {
  const client = useClient(session);
  const health = useLoad(() => client.health(), [client]);
  return (
    <main>
      <h1>Settings</h1>
      <ErrorNote error={health.error} />
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
    </main>
  );
}
