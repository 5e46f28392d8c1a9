import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CA_BUNDLE_PATH, DHCP_EVENT_SCRIPT, INIT_SCRIPT, installerRootFiles } from './init-script.js';

const dir = mkdtempSync(join(tmpdir(), 'plinth-init-script-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('installer init scripts', () => {
  it.each([
    ['init', INIT_SCRIPT],
    ['dhcp-event', DHCP_EVENT_SCRIPT],
  ])('%s is valid POSIX sh (dash -n)', (name, script) => {
    const path = join(dir, name);
    writeFileSync(path, script);
    expect(() => execFileSync('sh', ['-n', path], { stdio: 'pipe' })).not.toThrow();
  });

  it('reads the kernel command-line contract', () => {
    for (const word of ['plinth.url=', 'plinth.debug=', 'plinth.netwait=']) expect(INIT_SCRIPT).toContain(word);
    // The template literal must not have swallowed a shell expansion.
    expect(INIT_SCRIPT).toContain('${word#plinth.url=}');
    expect(INIT_SCRIPT).toContain('node "$AGENT"');
  });

  it('hands a CA bundle built into the installer to the agent', () => {
    expect(INIT_SCRIPT).toContain(`CA_BUNDLE=${CA_BUNDLE_PATH}`);
    expect(INIT_SCRIPT).toContain('export NODE_EXTRA_CA_CERTS="$CA_BUNDLE"');
  });

  it('ships /init as an executable', () => {
    expect(installerRootFiles().find((f) => f.path === '/init')).toMatchObject({ mode: 0o755 });
  });
});
