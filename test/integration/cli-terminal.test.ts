import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { sqliteBackend } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { runCli } from '../../src/cli/program.js';
import { streamOutput, terminalText } from '../../src/cli/output.js';
import { toJson } from '../../src/store/database.js';

type TC = Awaited<ReturnType<typeof freshController>>;

// What a hostile machine (or anyone on the provisioning network) can put in its serial and
// facts: clear the screen, set the window title, a one-character C1 CSI, a bidi override, a
// line break that forges a line of `machine show`.
const ESC_SERIAL = 'SN\u001b[2J\u001b]0;pwned\u0007-1';
const DISK = 'sda\u009b31m\u202e\nState:    available';

describe('the CLI shows values from machines without handing escape codes to the terminal', () => {
  let t: TC;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    t = await freshController(sqliteBackend);
    const url = await t.controller.listen();
    env = { PLINTH_URL: url, PLINTH_TOKEN: t.adminToken, PLINTH_CLI_CONFIG: '/nonexistent/cli.yaml' };
    const r = await t.api('POST', '/api/v1/machines', { name: 'evil-1', identity: { serial: ESC_SERIAL }, tags: { note: 'x\u001b[5my' } });
    expect(r.statusCode, r.body).toBe(201);
    const facts = { disks: [{ name: DISK, sizeBytes: 2 ** 30 }], nics: [] };
    await t.controller.services.store.db.updateTable('machines').set({ facts: toJson(facts) }).where('name', '=', 'evil-1').execute();
  });
  afterAll(async () => t?.close());

  /** Runs the real CLI with the real stream output, as it writes to a terminal. */
  async function plinth(...argv: string[]) {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const chunks: string[] = [];
    stdout.on('data', (d: Buffer) => chunks.push(d.toString('utf8')));
    stderr.on('data', (d: Buffer) => chunks.push(d.toString('utf8')));
    const code = await runCli(argv, { env, out: streamOutput(stdout, stderr) });
    return { code, text: chunks.join('') };
  }

  const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/;

  it('machine show: no control character, one line per field', async () => {
    const { code, text } = await plinth('machine', 'show', 'evil-1');
    expect(code).toBe(0);
    expect(text).not.toMatch(CONTROLS);
    expect(text).toContain('SN\\x1b[2J\\x1b]0;pwned\\x07-1');
    expect(text).toContain('sda\\u009b31m\\u202e\\nState:    available');
    expect(text.match(/^State:/gm)).toHaveLength(1);
  });

  it('machine list: table cells escaped', async () => {
    const { code, text } = await plinth('machine', 'list');
    expect(code).toBe(0);
    expect(text).not.toMatch(CONTROLS);
    expect(text).toContain('SN\\x1b[2J');
  });

  it('machine list --json: no raw control character, and the same values once parsed', async () => {
    const { code, text } = await plinth('machine', 'list', '--json', '--with-facts');
    expect(code).toBe(0);
    expect(text).not.toMatch(CONTROLS);
    const [m] = JSON.parse(text);
    expect(m.identity.serial).toBe(ESC_SERIAL);
    expect(m.tags.note).toBe('x\u001b[5my');
    expect(m.facts.disks[0].name).toBe(DISK);
  });

  it('keeps JSON printed as lines (local matching commands) the same JSON value', () => {
    const value = { serial: ESC_SERIAL, disk: DISK, del: 'a\u007fb' };
    const printed = terminalText(JSON.stringify(value, null, 2), '\n\t');
    expect(printed).not.toMatch(CONTROLS);
    expect(JSON.parse(printed)).toEqual(value);
  });
});
