// Debian packages the test suite and the benchmarks need (listed in packages.json): missing
// ones are installed with apt-get when running as root; otherwise the command says what to
// install and exits.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const LISTS = JSON.parse(readFileSync(new URL('./packages.json', import.meta.url), 'utf8'));

function missing(packages) {
  return packages.filter((p) => spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' }).stdout.trim() !== 'install ok installed');
}

/** Makes sure every package of the named lists ("test", "bench") is installed. */
export function ensurePackages(command, ...lists) {
  const wanted = missing(lists.flatMap((l) => LISTS[l]));
  if (wanted.length === 0) return;
  if (process.getuid?.() !== 0) {
    console.error(`${command} needs these Debian packages: ${wanted.join(' ')}\n  run as root: apt-get install -y ${wanted.join(' ')}`);
    process.exit(1);
  }
  console.log(`installing Debian packages: ${wanted.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...wanted], { stdio: 'inherit', env });
}
