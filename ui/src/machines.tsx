import { useEffect, useMemo, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import { STATES } from '../../src/core/states.js';
import type { MachineListQuery, MachineView } from '../../src/api/client-core.js';
import { can, clientFor, type Session } from './session.js';
import { navigate } from './router.js';
import { Choice, ErrorNote, Link, messageOf, useLoad, when } from './util.js';
import { useLive } from './live.js';
import { runBulk, type BulkResult } from './bulk.js';

/** The filter fields, as they stand in the page's address. */
const FILTERS = ['state', 'tag', 'owner', 'profile', 'power', 'q'] as const;
type FilterName = (typeof FILTERS)[number];

/** The list query a page address asks for (tags: comma-separated key=value). */
export function queryOf(params: URLSearchParams): Omit<MachineListQuery, 'limit' | 'cursor' | 'include'> {
  const q: Omit<MachineListQuery, 'limit' | 'cursor' | 'include'> = {};
  const state = params.get('state');
  if (state) q.state = [state];
  const tag = params.get('tag');
  if (tag) q.tag = tag.split(',').map((t) => t.trim()).filter(Boolean);
  for (const k of ['owner', 'profile', 'power', 'q'] as const) {
    const v = params.get(k);
    if (v) q[k] = v;
  }
  return q;
}

interface Column {
  id: string;
  label: string;
  cell: (m: MachineView) => ComponentChildren;
}
const COLUMNS: Column[] = [
  { id: 'state', label: 'State', cell: (m) => <span class={`state s-${m.state}`}>{m.state}</span> },
  { id: 'power', label: 'Power', cell: (m) => m.power.state + (m.power.drift ? ' (drift)' : '') },
  { id: 'owner', label: 'Owner', cell: (m) => m.owner ?? '' },
  { id: 'profile', label: 'Profile', cell: (m) => m.match?.profile ?? '' },
  { id: 'tags', label: 'Tags', cell: (m) => Object.entries(m.tags).map(([k, v]) => (v ? `${k}=${v}` : k)).join(', ') },
  { id: 'serial', label: 'Serial', cell: (m) => m.identity.serial ?? '' },
  { id: 'macs', label: 'MACs', cell: (m) => m.identity.macs.join(' ') },
  { id: 'stage', label: 'Last stage', cell: (m) => m.lastStage ?? '' },
  { id: 'image', label: 'Image', cell: (m) => m.deployment.image ?? '' },
  { id: 'error', label: 'Last error', cell: (m) => (m.lastError ? `${m.lastError.stage}: ${m.lastError.message}` : '') },
  { id: 'updated', label: 'Updated', cell: (m) => when(m.updatedAt) },
];
const DEFAULT_COLUMNS = ['state', 'power', 'owner', 'profile', 'tags'];
const COLUMNS_KEY = 'plinth.columns';

/** Actions offered for many machines at once (each machine still checks its own state). */
const BULK_ACTIONS = ['inspect', 'deploy', 'release', 'wipe', 'retry', 'abort', 'retire', 'unretire'];
const PAGE_SIZES = [25, 50, 100, 250];

function useColumns() {
  const [cols, setCols] = useState<string[]>(() => {
    try {
      const saved = JSON.parse(localStorage.getItem(COLUMNS_KEY) ?? 'null') as unknown;
      if (Array.isArray(saved)) return saved.filter((c): c is string => typeof c === 'string');
    } catch {
      /* a damaged setting falls back to the default */
    }
    return DEFAULT_COLUMNS;
  });
  const toggle = (id: string) => {
    const next = cols.includes(id) ? cols.filter((c) => c !== id) : [...cols, id];
    localStorage.setItem(COLUMNS_KEY, JSON.stringify(next));
    setCols(next);
  };
  return [COLUMNS.filter((c) => cols.includes(c.id)), cols, toggle] as const;
}

export function MachinesPage({ session, query }: { session: Session; query: URLSearchParams }) {
  const client = useMemo(() => clientFor(session.token), [session.token]);
  const filter = useMemo(() => queryOf(query), [query.toString()]);
  const filterKey = JSON.stringify(filter);
  const limit = Number(query.get('limit')) || 50;
  const cursor = query.get('cursor') ?? undefined;
  const grouped = query.get('group') === 'state';
  const [columns, chosen, toggleColumn] = useColumns();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [confirm, setConfirm] = useState<{ action: string; scope: 'selected' | 'filter'; count: number } | null>(null);
  const [bulk, setBulk] = useState<BulkResult | null>(null);
  const [bulkAction, setBulkAction] = useState(BULK_ACTIONS[0]!);
  const [busy, setBusy] = useState(false);

  const page = useLoad(() => client.listMachines({ ...filter, limit, ...(cursor ? { cursor } : {}) }), [client, filterKey, limit, cursor]);
  const counts = useLoad(() => client.machineCounts({ ...filter, state: undefined }), [client, JSON.stringify({ ...filter, state: undefined })]);
  useEffect(() => setSelected(new Set()), [filterKey]);
  useLive(client, () => {
    void page.reload();
    void counts.reload();
  });

  /** Moves to the address with these parameters changed (empty: removed); a new filter starts at the first page. */
  const setParams = (changes: Record<string, string | null>, keepCursor = false) => {
    const p = new URLSearchParams(query);
    for (const [k, v] of Object.entries(changes)) {
      if (v) p.set(k, v);
      else p.delete(k);
    }
    if (!keepCursor) p.delete('cursor');
    const s = p.toString();
    navigate(`/machines${s ? `?${s}` : ''}`, false);
  };

  const onFilter = (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    const changes: Record<string, string | null> = {};
    for (const k of FILTERS) changes[k] = String(form.get(k) ?? '').trim() || null;
    setParams(changes);
  };

  const items = page.data?.items ?? [];
  const total = counts.data?.total ?? 0;
  const matching = filter.state ? (counts.data?.byState[filter.state[0]!] ?? 0) : total;
  const operator = can(session, 'operator');

  const doBulk = async () => {
    if (!confirm) return;
    const { action, scope } = confirm;
    setConfirm(null);
    setBusy(true);
    try {
      const names = scope === 'selected' ? [...selected] : null;
      setBulk(await runBulk(client, action, names ?? filter));
      setSelected(new Set());
    } catch (e) {
      setBulk({ action, done: 0, failed: [{ name: '', message: messageOf(e) }] });
    } finally {
      setBusy(false);
      void page.reload();
      void counts.reload();
    }
  };

  const groups: [string | null, MachineView[]][] = grouped
    ? STATES.filter((s) => items.some((m) => m.state === s)).map((s) => [s, items.filter((m) => m.state === s)])
    : [[null, items]];
  const allOnPage = items.length > 0 && items.every((m) => selected.has(m.name));

  return (
    <main>
      <h1>Machines</h1>
      <section aria-label="Counts by state" class="counts">
        <button class={!filter.state ? 'current' : ''} aria-pressed={!filter.state} onClick={() => setParams({ state: null })}>
          all <b>{total}</b>
        </button>
        {STATES.filter((s) => counts.data?.byState[s]).map((s) => (
          <button class={filter.state?.[0] === s ? 'current' : ''} aria-pressed={filter.state?.[0] === s} onClick={() => setParams({ state: s })}>
            {s} <b>{counts.data!.byState[s]}</b>
          </button>
        ))}
      </section>

      <form class="filters" onSubmit={onFilter} aria-label="Filter machines" key={query.toString()}>
        <Choice id="f-state" label="State" name="state" value={query.get('state') ?? ''} options={[['', 'any'], ...STATES]} onChange={(v) => setParams({ state: v || null })} />
        <Choice id="f-power" label="Power" name="power" value={query.get('power') ?? ''} options={[['', 'any'], 'on', 'off', 'unknown']} onChange={(v) => setParams({ power: v || null })} />
        <label>
          Search
          <input name="q" type="search" placeholder="name, serial, MAC" defaultValue={query.get('q') ?? ''} />
        </label>
        <label>
          Tag
          <input name="tag" placeholder="rack=r1, gpu" defaultValue={query.get('tag') ?? ''} />
        </label>
        <label>
          Owner
          <input name="owner" defaultValue={query.get('owner') ?? ''} />
        </label>
        <label>
          Profile
          <input name="profile" defaultValue={query.get('profile') ?? ''} />
        </label>
        <button type="submit">Filter</button>
      </form>

      <div class="toolbar">
        <label>
          <input type="checkbox" checked={grouped} onChange={(e) => setParams({ group: e.currentTarget.checked ? 'state' : null }, true)} /> Group by state
        </label>
        <details>
          <summary>Columns</summary>
          <fieldset>
            <legend>Columns shown</legend>
            {COLUMNS.map((c) => (
              <label>
                <input type="checkbox" checked={chosen.includes(c.id)} onChange={() => toggleColumn(c.id)} /> {c.label}
              </label>
            ))}
          </fieldset>
        </details>
        <Choice id="f-limit" label="Per page" value={String(limit)} options={PAGE_SIZES.map(String)} onChange={(v) => setParams({ limit: v })} />
      </div>

      {operator && (
        <section aria-label="Bulk actions" class="bulk">
          <Choice id="bulk-action" label="Action" value={bulkAction} options={BULK_ACTIONS} onChange={setBulkAction} />
          <button disabled={busy || selected.size === 0} onClick={() => setConfirm({ action: bulkAction, scope: 'selected', count: selected.size })}>
            Apply to {selected.size} selected
          </button>
          <button disabled={busy || matching === 0} onClick={() => setConfirm({ action: bulkAction, scope: 'filter', count: matching })}>
            Apply to all {matching} matching
          </button>
          {busy && <span role="status">Working…</span>}
        </section>
      )}
      {confirm && (
        <div role="alertdialog" aria-modal="true" aria-labelledby="confirm-text" class="confirm">
          <p id="confirm-text">
            {confirm.action} {confirm.count} machine{confirm.count === 1 ? '' : 's'}?
          </p>
          <button autoFocus onClick={doBulk}>
            Confirm
          </button>
          <button onClick={() => setConfirm(null)}>Cancel</button>
        </div>
      )}
      {bulk && (
        <div role="status" class="bulk-result">
          {bulk.action}: {bulk.done} done{bulk.failed.length ? `, ${bulk.failed.length} refused` : ''}
          {bulk.failed.length > 0 && (
            <ul>
              {bulk.failed.slice(0, 10).map((f) => (
                <li>
                  {f.name ? `${f.name}: ` : ''}
                  {f.message}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}

      <ErrorNote error={page.error ?? counts.error} />
      <div class="scroll">
        <table aria-label="Machines" aria-busy={page.loading}>
          <thead>
            <tr>
              {operator && (
                <th scope="col">
                  <input
                    type="checkbox"
                    aria-label="Select all on this page"
                    checked={allOnPage}
                    onChange={() => setSelected(allOnPage ? new Set() : new Set(items.map((m) => m.name)))}
                  />
                </th>
              )}
              <th scope="col">Name</th>
              {columns.map((c) => (
                <th scope="col">{c.label}</th>
              ))}
            </tr>
          </thead>
          {groups.map(([state, rows]) => (
            <tbody>
              {state && (
                <tr class="group">
                  <th scope="rowgroup" colSpan={columns.length + (operator ? 2 : 1)}>
                    {state} ({rows.length} on this page)
                  </th>
                </tr>
              )}
              {rows.map((m) => (
                <tr key={m.id} data-machine={m.name}>
                  {operator && (
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`Select ${m.name}`}
                        checked={selected.has(m.name)}
                        onChange={() => {
                          const next = new Set(selected);
                          if (next.has(m.name)) next.delete(m.name);
                          else next.add(m.name);
                          setSelected(next);
                        }}
                      />
                    </td>
                  )}
                  <th scope="row">
                    <Link href={`/machines/${encodeURIComponent(m.name)}`}>{m.name}</Link>
                  </th>
                  {columns.map((c) => (
                    <td data-column={c.id}>{c.cell(m)}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          ))}
          {items.length === 0 && !page.loading && (
            <tbody>
              <tr>
                <td colSpan={columns.length + (operator ? 2 : 1)}>No machines match.</td>
              </tr>
            </tbody>
          )}
        </table>
      </div>
      <nav aria-label="Pages" class="pager">
        <button disabled={!cursor} onClick={() => history.back()}>
          Previous
        </button>
        <button disabled={!page.data?.nextCursor} onClick={() => setParams({ cursor: page.data!.nextCursor }, true)}>
          Next
        </button>
      </nav>
    </main>
  );
}
