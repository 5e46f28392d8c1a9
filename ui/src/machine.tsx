import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import type { Facts } from '../../src/core/facts.js';
import type { ApiClient, LogLineView, MachineView, RunView } from '../../src/api/client-core.js';
import { can, clientFor, type Session } from './session.js';
import { ErrorNote, Link, SimpleTable, bytes, messageOf, useLoad, when } from './util.js';
import { useLive } from './live.js';

/** Actions that lose work or data: asked twice. */
const DESTRUCTIVE = new Set(['release', 'wipe', 'retire', 'redeploy', 'abort']);

function Field({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </>
  );
}

function Summary({ m }: { m: MachineView }) {
  const flags = [m.maintenance ? `maintenance${m.maintenanceReason ? ` (${m.maintenanceReason})` : ''}` : null, m.protected ? 'protected' : null].filter(Boolean);
  return (
    <section aria-labelledby="summary">
      <h2 id="summary">Summary</h2>
      <dl class="fields">
        <Field label="State">
          <span class={`state s-${m.state}`} data-testid="machine-state">
            {m.state}
          </span>
          {m.targetState ? ` → ${m.targetState}` : ''} since {when(m.stateEnteredAt)}
        </Field>
        <Field label="Power">
          {m.power.state}
          {m.power.expected ? `, expected ${m.power.expected}` : ''}
          {m.power.drift ? ' (drift)' : ''}
          {m.power.readAt ? `, read ${when(m.power.readAt)}` : ''}
        </Field>
        <Field label="Flags">{flags.length ? flags.join(', ') : 'none'}</Field>
        <Field label="Owner">{m.owner ?? '—'}</Field>
        <Field label="Profile">{m.match?.profile ?? (m.match?.error ? `none: ${m.match.error}` : '—')}</Field>
        {m.match?.poolEntry && <Field label="Pool entry">{`${m.match.poolEntry.pool} #${m.match.poolEntry.position}`}</Field>}
        {m.match && Object.keys(m.match.vars).length > 0 && (
          <Field label="Variables">
            <code>{JSON.stringify(m.match.vars)}</code>
          </Field>
        )}
        <Field label="System UUID">{m.identity.systemUuid ?? '—'}</Field>
        <Field label="Serial">{m.identity.serial ?? '—'}</Field>
        <Field label="Hardware">{[m.identity.manufacturer, m.identity.productName].filter(Boolean).join(' ') || '—'}</Field>
        <Field label="MACs">{m.identity.macs.join(', ') || '—'}</Field>
        <Field label="Tags">{Object.entries(m.tags).map(([k, v]) => (v ? `${k}=${v}` : k)).join(', ') || '—'}</Field>
        <Field label="Deployed">{m.deployment.image ? `${m.deployment.image}${m.deployment.address ? ` at ${m.deployment.address}` : ''}, ${when(m.deployment.deployedAt)}` : '—'}</Field>
        <Field label="Last stage">{m.lastStage ?? '—'}</Field>
        <Field label="Last error">{m.lastError ? `${m.lastError.stage}: ${m.lastError.message} (${when(m.lastError.at)})` : 'none'}</Field>
      </dl>
    </section>
  );
}

function Hardware({ facts }: { facts: Facts | null }) {
  if (!facts) {
    return (
      <section aria-labelledby="hardware">
        <h2 id="hardware">Hardware</h2>
        <p>Not inspected yet.</p>
      </section>
    );
  }
  const threads = facts.cpu.threads;
  return (
    <section aria-labelledby="hardware">
      <h2 id="hardware">Hardware</h2>
      <dl class="fields">
        <Field label="CPU">
          {facts.cpu.model ?? facts.cpu.architecture}: {facts.cpu.sockets} socket(s), {facts.cpu.cores} cores, {threads} threads ({facts.cpu.architecture})
        </Field>
        <Field label="Memory">{bytes(facts.memory.totalBytes)}</Field>
        <Field label="Firmware">
          {facts.firmware.bootMode.toUpperCase()}
          {facts.firmware.vendor ? `, ${facts.firmware.vendor} ${facts.firmware.version ?? ''}` : ''}
        </Field>
        <Field label="BMC">{facts.bmc ? `${facts.bmc.ipv4 ?? 'no address'}${facts.bmc.mac ? ` (${facts.bmc.mac})` : ''}` : 'none found'}</Field>
      </dl>
      <SimpleTable
        label="Disks"
        rows={facts.disks}
        columns={[
          ['Disk', (d) => d.name],
          ['Size', (d) => bytes(d.sizeBytes)],
          ['Model', (d) => d.model ?? ''],
          ['Serial', (d) => d.serial ?? ''],
          ['Kind', (d) => (d.rotational ? 'HDD' : 'SSD')],
        ]}
      />
      <SimpleTable
        label="Network interfaces"
        rows={facts.nics}
        columns={[
          ['NIC', (n) => n.name],
          ['MAC', (n) => n.mac],
          ['Link', (n) => (n.link ? `up${n.speedMbps ? `, ${n.speedMbps} Mb/s` : ''}` : 'down')],
          ['Driver', (n) => n.driver ?? ''],
          ['Addresses', (n) => [...n.ipv4, ...n.ipv6].join(' ')],
        ]}
      />
    </section>
  );
}

function Trace({ client, name, tick }: { client: ApiClient; name: string; tick: number }) {
  const trace = useLoad(() => client.trace(name, 5), [client, name, tick]);
  return (
    <section aria-labelledby="trace">
      <h2 id="trace">Boot trace</h2>
      <ErrorNote error={trace.error} />
      {trace.data && trace.data.attempts.length === 0 && <p>No boot seen yet.</p>}
      {trace.data?.attempts.map((a) => (
        <div class="attempt">
          <h3>
            {when(a.startedAt)}: {a.decision}
            {a.platform ? ` (${a.platform}${a.arch ? `, ${a.arch}` : ''})` : ''}
          </h3>
          <ol class="timeline">
            {a.stages.map((st) => (
              <li>
                <time dateTime={st.at}>{new Date(st.at).toLocaleTimeString()}</time> {st.stage}
              </li>
            ))}
          </ol>
        </div>
      ))}
    </section>
  );
}

/** Runs whose log can still grow. */
const LIVE_RUN = new Set(['pending', 'running']);

/** A run's log, followed while the run is under way (new lines after the last one seen). */
function RunLog({ client, run }: { client: ApiClient; run: RunView }) {
  const [lines, setLines] = useState<LogLineView[]>([]);
  const [error, setError] = useState<string | null>(null);
  const live = LIVE_RUN.has(run.status);
  const box = useRef<HTMLPreElement>(null);
  useEffect(() => {
    let stop = false;
    let after = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const read = async () => {
      try {
        for (;;) {
          const page = await client.runLog(run.id, { after, limit: 500 });
          if (stop) return;
          if (page.items.length) {
            after = page.items[page.items.length - 1]!.id;
            setLines((old) => [...old, ...page.items]);
          }
          if (page.items.length < 500) break;
        }
        setError(null);
      } catch (e) {
        if (!stop) setError(messageOf(e));
      }
      if (!stop && live) timer = setTimeout(read, 2000);
    };
    setLines([]);
    void read();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [client, run.id, live]);
  useEffect(() => {
    const el = box.current;
    if (el && live) el.scrollTop = el.scrollHeight;
  }, [lines.length, live]);
  return (
    <>
      <ErrorNote error={error} />
      <pre class="log" ref={box} aria-label={`Log of the ${run.kind} run`} tabIndex={0} aria-live={live ? 'polite' : 'off'}>
        {lines.length ? lines.map((l) => `${new Date(l.at).toLocaleTimeString()} ${l.line}\n`).join('') : live ? 'Waiting for the installer…' : 'No log lines.'}
      </pre>
    </>
  );
}

/** The files a deploy rendered for the machine (cloud-config, preseed…), each readable on request. */
function Artifacts({ client, run }: { client: ApiClient; run: RunView }) {
  const list = useLoad(() => client.runArtifacts(run.id), [client, run.id]);
  const [shown, setShown] = useState<{ name: string; text: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const show = async (name: string) => {
    setError(null);
    try {
      const res = await client.fetch(`/api/v1/runs/${encodeURIComponent(run.id)}/artifacts/${encodeURIComponent(name)}`, {
        headers: client.authorization ? { authorization: client.authorization } : {},
      });
      if (!res.ok) throw new Error(`${name}: HTTP ${res.status}`);
      setShown({ name, text: await res.text() });
    } catch (e) {
      setError(messageOf(e));
    }
  };
  if (!list.data?.items.length) return null;
  return (
    <div class="artifacts">
      <h4>Rendered artifacts</h4>
      <ul>
        {list.data.items.map((a) => (
          <li>
            <button onClick={() => show(a.name)}>{a.name}</button> {a.contentType}, {bytes(a.size)}
          </li>
        ))}
      </ul>
      <ErrorNote error={error ?? list.error} />
      {shown && (
        <pre class="log" aria-label={shown.name} tabIndex={0}>
          {shown.text}
        </pre>
      )}
    </div>
  );
}

function Runs({ client, name, tick }: { client: ApiClient; name: string; tick: number }) {
  const runs = useLoad(() => client.runs(name, { limit: 10 }), [client, name, tick]);
  const [open, setOpen] = useState<string | null>(null);
  // The run under way is opened by itself, so its log is followed as it grows.
  const current = runs.data?.items.find((r) => LIVE_RUN.has(r.status))?.id ?? null;
  useEffect(() => {
    if (current) setOpen(current);
  }, [current]);
  return (
    <section aria-labelledby="runs">
      <h2 id="runs">Runs</h2>
      <ErrorNote error={runs.error} />
      {runs.data?.items.length === 0 && <p>No runs yet.</p>}
      {runs.data?.items.map((r) => (
        <details open={open === r.id} onToggle={(e) => (e.currentTarget.open ? setOpen(r.id) : open === r.id && setOpen(null))}>
          <summary>
            {r.kind} {r.status}, {when(r.createdAt)} by {r.createdBy}
          </summary>
          <ol class="steps">
            {r.steps.map((s) => (
              <li>
                {s.name}: {s.status}
                {s.message ? ` (${s.message})` : ''}
              </li>
            ))}
          </ol>
          {open === r.id && (
            <>
              <RunLog client={client} run={r} />
              {r.kind === 'deploy' && <Artifacts client={client} run={r} />}
            </>
          )}
        </details>
      ))}
    </section>
  );
}

function Events({ client, name, tick }: { client: ApiClient; name: string; tick: number }) {
  const events = useLoad(() => client.events(name, { limit: 50 }), [client, name, tick]);
  return (
    <section aria-labelledby="events">
      <h2 id="events">Events</h2>
      <ErrorNote error={events.error} />
      <SimpleTable
        label="Events"
        rows={[...(events.data?.items ?? [])].reverse()}
        columns={[
          ['When', (e) => when(e.at)],
          ['Event', (e) => e.action],
          ['Change', (e) => (e.fromState || e.toState ? `${e.fromState ?? '∅'} → ${e.toState ?? '∅'}` : '')],
          ['By', (e) => e.actor],
          ['Reason', (e) => e.reason ?? ''],
        ]}
      />
    </section>
  );
}

function Actions({ client, m, onDone }: { client: ApiClient; m: MachineView; onDone: () => void }) {
  const [asking, setAsking] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async (action: string) => {
    setAsking(null);
    setBusy(true);
    setError(null);
    try {
      await client.action(m.name, action);
      onDone();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="actions">
      <h2 id="actions">Actions</h2>
      {m.allowedActions.length === 0 && <p>No action in state {m.state}.</p>}
      <div class="buttons">
        {m.allowedActions.map((a) => (
          <button disabled={busy} onClick={() => (DESTRUCTIVE.has(a) ? setAsking(a) : run(a))}>
            {a}
          </button>
        ))}
      </div>
      {asking && (
        <div role="alertdialog" aria-labelledby="ask" class="confirm">
          <p id="ask">
            {asking} {m.name}?
          </p>
          <button autoFocus onClick={() => run(asking)}>
            Confirm
          </button>
          <button onClick={() => setAsking(null)}>Cancel</button>
        </div>
      )}
      <ErrorNote error={error} />
    </section>
  );
}

export function MachinePage({ session, name }: { session: Session; name: string }) {
  const client = useMemo(() => clientFor(session.token), [session.token]);
  const machine = useLoad(() => client.getMachine(name), [client, name]);
  // Every change (an event of the machine, or the slow poll) reads the machine and its sections again.
  const [tick, setTick] = useState(0);
  useLive(
    client,
    () => {
      void machine.reload();
      setTick((n) => n + 1);
    },
    name,
  );
  const m = machine.data;
  return (
    <main>
      <p>
        <Link href="/machines">← Machines</Link>
      </p>
      <h1>{name}</h1>
      <ErrorNote error={machine.error} />
      {m && (
        <div class="machine">
          <Summary m={m} />
          {can(session, 'operator') && <Actions client={client} m={m} onDone={() => void machine.reload()} />}
          <Hardware facts={m.facts as Facts | null} />
          <Trace client={client} name={m.name} tick={tick} />
          <Runs client={client} name={m.name} tick={tick} />
          <Events client={client} name={m.name} tick={tick} />
        </div>
      )}
    </main>
  );
}
