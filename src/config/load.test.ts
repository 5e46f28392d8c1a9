import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeConfig, envName, loadConfig, parseListen } from './load.js';

describe('configuration', () => {
  it('has defaults for everything', () => {
    const c = loadConfig({});
    expect(c.listen).toBe('0.0.0.0:7708');
    expect(c.dataDir).toBe(join(process.cwd(), 'var'));
    expect(c.deadlines['deploy-wait']).toBe('60m');
    expect(c.releaseWipe).toBe('quick');
  });

  it('applies file < environment < flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'plinth-cfg-'));
    const file = join(dir, 'plinth.yaml');
    writeFileSync(file, 'listen: 127.0.0.1:1\nlogLevel: debug\ndeadlines:\n  inspecting: 5m\n');
    const c = loadConfig({
      file,
      env: { PLINTH_LISTEN: '127.0.0.1:2', PLINTH_DEADLINES_INSPECT_WAIT: '7m' },
      flags: { listen: '127.0.0.1:3' },
    });
    expect(c.listen).toBe('127.0.0.1:3');
    expect(c.logLevel).toBe('debug');
    expect(c.deadlines.inspecting).toBe('5m');
    expect(c.deadlines['inspect-wait']).toBe('7m');
    expect(c.deadlines.wiping).toBe('10m');
  });

  it('names the bad key', () => {
    expect(() => loadConfig({ flags: { lisen: 'x' } })).toThrow(/unknown key.*lisen/);
    expect(() => loadConfig({ env: { PLINTH_DEADLINES_DEPLOYING: 'soon' } })).toThrow(/deadlines\.deploying/);
    expect(() => loadConfig({ env: { PLINTH_LOG_LEVEL: 'loud' } })).toThrow(/logLevel/);
    expect(() => loadConfig({ file: '/nonexistent/plinth.yaml', fileRequired: true })).toThrow(/does not exist/);
  });

  it('derives environment names from keys', () => {
    expect(envName(['dataDir'])).toBe('PLINTH_DATA_DIR');
    expect(envName(['deadlines', 'deploy-wait'])).toBe('PLINTH_DEADLINES_DEPLOY_WAIT');
    expect(describeConfig().map((d) => d.env)).toContain('PLINTH_DATABASE_URL');
  });

  it('parses listen addresses', () => {
    expect(parseListen('0.0.0.0:7708')).toEqual({ host: '0.0.0.0', port: 7708 });
    expect(parseListen('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(() => parseListen('7708')).toThrow(/host:port/);
  });
});

describe('docs/configuration.md', () => {
  it('documents every setting and its environment name', async () => {
    const { readFileSync } = await import('node:fs');
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    for (const d of describeConfig()) {
      expect(doc, d.key).toContain(`| \`${d.key}\` | \`${d.env}\` |`);
    }
  });
});
