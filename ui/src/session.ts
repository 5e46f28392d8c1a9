import { ApiClient } from '../../src/api/client-core.js';

/** The signed-in token and what it may do, kept for this browser tab's session only. */
export interface Session {
  token: string;
  name: string;
  role: string;
}

const KEY = 'plinth.session';

export function loadSession(): Session | null {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as Session;
  } catch {
    sessionStorage.removeItem(KEY);
    return null;
  }
}

export function saveSession(s: Session | null): void {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

/** The typed client of the page's own controller (the CLI's client, without Node's parts). */
export const clientFor = (token: string | null) => new ApiClient({ url: '', token });

const RANK: Record<string, number> = { reader: 0, operator: 1, admin: 2 };
/** Whether the session's role is at least `need` (reader < operator < admin). */
export const can = (s: Session, need: 'reader' | 'operator' | 'admin') => (RANK[s.role] ?? -1) >= RANK[need]!;
