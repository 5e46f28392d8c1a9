import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import { linkClick } from './router.js';

/** Data loaded by an async call, reloaded when `deps` change; `reload` asks again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<{ data: T | null; error: string | null; loading: boolean }>({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const reload = useCallback(async () => {
    const n = ++seq.current;
    try {
      const data = await load();
      if (n === seq.current) setState({ data, error: null, loading: false });
    } catch (e) {
      if (n === seq.current) setState((s) => ({ data: s.data, error: messageOf(e), loading: false }));
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  useEffect(() => {
    setState((s) => ({ ...s, loading: true }));
    void reload();
  }, [reload]);
  return { ...state, reload };
}

export const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

export function Link(props: { href: string; children: ComponentChildren; class?: string }) {
  return (
    <a href={props.href} class={props.class} onClick={linkClick}>
      {props.children}
    </a>
  );
}

export function ErrorNote({ error }: { error: string | null }) {
  return error ? (
    <p role="alert" class="error">
      {error}
    </p>
  ) : null;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
/** 17179869184 → "16 GiB". */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${UNITS[i]}`;
}

/** An ISO timestamp in the reader's local time, to the second. */
export const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : '—');

/** A table of objects, one column per key given (simple list pages). */
export function SimpleTable<T>(props: { label: string; rows: T[]; columns: [string, (row: T) => ComponentChildren][] }) {
  return (
    <div class="scroll">
      <table aria-label={props.label}>
        <thead>
          <tr>
            {props.columns.map(([h]) => (
              <th scope="col">{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.length === 0 ? (
            <tr>
              <td colSpan={props.columns.length}>None.</td>
            </tr>
          ) : (
            props.rows.map((r) => (
              <tr>
                {props.columns.map(([, cell]) => (
                  <td>{cell(r)}</td>
                ))}
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}

/** A labelled select (the label named by `for`, so the accessible name is the label alone). */
export function Choice(props: {
  id: string;
  label: string;
  options: readonly (string | [value: string, text: string])[];
  name?: string;
  value?: string;
  onChange?: (value: string) => void;
}) {
  return (
    <span class="field">
      <label for={props.id}>{props.label}</label>
      <select id={props.id} name={props.name} value={props.value} onChange={props.onChange && ((e) => props.onChange!(e.currentTarget.value))}>
        {props.options.map((o) => {
          const [value, text] = typeof o === 'string' ? [o, o] : o;
          return <option value={value}>{text}</option>;
        })}
      </select>
    </span>
  );
}
