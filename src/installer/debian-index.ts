/**
 * Reading Debian's control-file indexes: the `Packages` index debootstrap leaves in the
 * target (already verified against the signed Release file) and dpkg's `status` database.
 */
export type Stanza = Map<string, string>;

/** Splits a deb822 document into stanzas; continuation lines are joined with newlines. */
export function parseStanzas(text: string): Stanza[] {
  const stanzas: Stanza[] = [];
  let current: Stanza = new Map();
  let lastField: string | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (current.size > 0) stanzas.push(current);
      current = new Map();
      lastField = null;
      continue;
    }
    if ((line.startsWith(' ') || line.startsWith('\t')) && lastField) {
      current.set(lastField, `${current.get(lastField) ?? ''}\n${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    lastField = line.slice(0, colon);
    current.set(lastField, line.slice(colon + 1).trim());
  }
  if (current.size > 0) stanzas.push(current);
  return stanzas;
}

/**
 * Finds one package's stanza in a Packages index without parsing all of it (the bookworm
 * main index is about 50 MB). The highest version wins when several are listed.
 */
export function findPackage(indexText: string, name: string): Stanza | null {
  const needle = `Package: ${name}\n`;
  let best: Stanza | null = null;
  let from = 0;
  for (;;) {
    const at = indexText.indexOf(needle, from);
    if (at < 0) break;
    from = at + needle.length;
    if (at > 0 && indexText[at - 1] !== '\n') continue;
    const end = indexText.indexOf('\n\n', at);
    const stanza = parseStanzas(indexText.slice(at, end < 0 ? undefined : end))[0];
    if (!stanza) continue;
    if (!best || compareDebianVersions(stanza.get('Version') ?? '', best.get('Version') ?? '') > 0) best = stanza;
  }
  return best;
}

/** The package names of a Depends field, first alternative of each, without versions. */
export function dependencyNames(depends: string | undefined): string[] {
  if (!depends) return [];
  return depends
    .split(',')
    .map((clause) => clause.split('|')[0]!.trim().split(/[\s(:]/)[0]!)
    .filter(Boolean);
}

/** name → version of every package dpkg records as installed. */
export function installedPackages(statusText: string): Record<string, string> {
  const installed: Record<string, string> = {};
  for (const s of parseStanzas(statusText)) {
    const name = s.get('Package');
    const version = s.get('Version');
    if (name && version && (s.get('Status') ?? '').endsWith(' installed')) installed[name] = version;
  }
  return Object.fromEntries(Object.entries(installed).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Debian version ordering (epoch, upstream, revision; `~` sorts before everything). */
export function compareDebianVersions(a: string, b: string): number {
  const split = (v: string) => {
    const colon = v.indexOf(':');
    const epoch = colon >= 0 ? Number(v.slice(0, colon)) : 0;
    const rest = colon >= 0 ? v.slice(colon + 1) : v;
    const dash = rest.lastIndexOf('-');
    return { epoch, upstream: dash >= 0 ? rest.slice(0, dash) : rest, revision: dash >= 0 ? rest.slice(dash + 1) : '' };
  };
  const va = split(a);
  const vb = split(b);
  if (va.epoch !== vb.epoch) return va.epoch - vb.epoch;
  return compareFragment(va.upstream, vb.upstream) || compareFragment(va.revision, vb.revision);
}

function compareFragment(a: string, b: string): number {
  const order = (c: string | undefined): number => {
    if (c === undefined) return 0;
    if (c === '~') return -1;
    if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
    return c.charCodeAt(0) + 256;
  };
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // Non-digit prefix, compared character by character.
    while ((i < a.length && !/\d/.test(a[i]!)) || (j < b.length && !/\d/.test(b[j]!))) {
      const ca = i < a.length && !/\d/.test(a[i]!) ? a[i] : undefined;
      const cb = j < b.length && !/\d/.test(b[j]!) ? b[j] : undefined;
      const diff = order(ca) - order(cb);
      if (diff !== 0) return diff;
      if (ca !== undefined) i++;
      if (cb !== undefined) j++;
    }
    // Numeric part.
    let na = '';
    let nb = '';
    while (i < a.length && /\d/.test(a[i]!)) na += a[i++];
    while (j < b.length && /\d/.test(b[j]!)) nb += b[j++];
    const diff = Number(na || '0') - Number(nb || '0');
    if (diff !== 0) return diff;
  }
  return 0;
}
