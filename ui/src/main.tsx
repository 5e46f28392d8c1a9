import { render } from 'preact';
import { useState } from 'preact/hooks';
import { clientFor, can, loadSession, saveSession, type Session } from './session.js';
import { navigate, useLocation } from './router.js';
import { ErrorNote, Link, messageOf } from './util.js';
import { MachinesPage } from './machines.js';
import { MachinePage } from './machine.js';
import { AppliancesPage, ImagesPage, PoolsPage, ProfilesPage, SettingsPage, TokensPage } from './others.js';

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const who = await clientFor(token.trim()).whoami();
      onSignedIn({ token: token.trim(), name: who.name, role: who.role });
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <h1>Plinth</h1>
      <form onSubmit={submit}>
        <label for="token">Token</label>
        <input id="token" type="password" autoComplete="off" required value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        <ErrorNote error={error} />
      </form>
    </main>
  );
}

const PAGES: { href: string; label: string; need: 'reader' | 'admin' }[] = [
  { href: '/machines', label: 'Machines', need: 'reader' },
  { href: '/profiles', label: 'Profiles', need: 'reader' },
  { href: '/pools', label: 'Pools', need: 'reader' },
  { href: '/images', label: 'Images', need: 'reader' },
  { href: '/appliances', label: 'Appliances', need: 'reader' },
  { href: '/tokens', label: 'Tokens', need: 'admin' },
  { href: '/settings', label: 'Settings', need: 'reader' },
];

function Page({ session }: { session: Session }) {
  const loc = useLocation();
  const p = loc.path;
  if (p === '/' || p === '/machines') return <MachinesPage session={session} query={loc.query} />;
  const m = /^\/machines\/([^/]+)$/.exec(p);
  if (m) return <MachinePage session={session} name={decodeURIComponent(m[1]!)} />;
  if (p === '/profiles') return <ProfilesPage session={session} />;
  if (p === '/pools') return <PoolsPage session={session} />;
  if (p === '/images') return <ImagesPage session={session} />;
  if (p === '/appliances') return <AppliancesPage session={session} />;
  if (p === '/tokens' && can(session, 'admin')) return <TokensPage session={session} />;
  if (p === '/settings') return <SettingsPage session={session} />;
  return (
    <main>
      <h1>Not found</h1>
      <p>
        No page here. <Link href="/machines">Machines</Link>
      </p>
    </main>
  );
}

function App() {
  const [session, setSession] = useState(loadSession);
  const loc = useLocation();
  if (!session) {
    return (
      <SignIn
        onSignedIn={(s) => {
          saveSession(s);
          setSession(s);
        }}
      />
    );
  }
  const signOut = () => {
    saveSession(null);
    setSession(null);
    navigate('/');
  };
  return (
    <>
      <header>
        <nav aria-label="Main">
          <strong>Plinth</strong>
          <ul>
            {PAGES.filter((pg) => can(session, pg.need)).map((pg) => (
              <li>
                <Link href={pg.href} class={loc.path.startsWith(pg.href) ? 'current' : ''}>
                  {pg.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">
          {session.name} ({session.role}) <button onClick={signOut}>Sign out</button>
        </span>
      </header>
      <Page session={session} />
    </>
  );
}

render(<App />, document.getElementById('app')!);
