/**
 * The collection's inventory plugin (ansible/plugins/inventory/plinth.py) run by Debian's
 * ansible-core against a real controller: `ansible-inventory --list` and `--host` give the
 * machines grouped by state, profile, tag and owner, with facts, pool variables and the
 * installed address as ansible_host; a refused token is Ansible's error naming the cause.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.js';
import { freshController } from '../support/controller.js';
import { ensureDebianPackages, hasCommand } from '../support/peers/debian-packages.js';
import { bladeFacts, bootAndReport, injectHttp } from './matching-support.js';

const run = promisify(execFile);
type TC = Awaited<ReturnType<typeof freshController>>;

describe.each(backends)('ansible dynamic inventory on $name', (backend) => {
  let t: TC;
  let url: string;
  const dir = mkdtempSync(join(tmpdir(), 'plinth-ansible-'));
  const inventory = join(dir, 'plinth.yml');

  const ansible = async (args: string[], token = t.adminToken) =>
    run('ansible-inventory', ['-i', inventory, ...args], {
      env: {
        PATH: '/usr/bin:/bin',
        HOME: dir,
        ANSIBLE_COLLECTIONS_PATH: join(dir, 'collections'),
        ANSIBLE_INVENTORY_ENABLED: 'plinth.metal.plinth',
        ANSIBLE_INVENTORY_UNPARSED_FAILED: 'true',
        ANSIBLE_LOCAL_TEMP: join(dir, 'tmp'),
        PLINTH_URL: url,
        PLINTH_TOKEN: token,
      },
      timeout: 120_000,
    });

  beforeAll(async () => {
    ensureDebianPackages(['ansible-core'], () => hasCommand('ansible-inventory'));
    // The collection from the repository, where Ansible looks for plinth.metal.
    mkdirSync(join(dir, 'collections', 'ansible_collections', 'plinth'), { recursive: true });
    symlinkSync(resolve('ansible'), join(dir, 'collections', 'ansible_collections', 'plinth', 'metal'));
    writeFileSync(inventory, 'plugin: plinth.metal.plinth\n');

    writeFileSync(join(dir, 'vmlinuz'), 'k');
    writeFileSync(join(dir, 'initrd.img'), 'i');
    t = await freshController(backend, {}, { installer: () => ({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') }) });
    url = await t.controller.listen();
    const apply = await t.api('POST', '/api/v1/profiles/apply', {
      pools: [{ name: 'hosts', entries: [{ hostname: 'web-01', ip: '10.0.0.11' }] }],
      profiles: [{ name: 'blade', pool: 'hosts', spec: [['system', 'product', 'vendor', 'HP']] }],
    });
    expect(apply.statusCode, apply.body).toBe(200);
    await bootAndReport(injectHttp(t.controller.app), bladeFacts(1));
    for (const body of [
      { name: 'rack-a1', tags: { rack: 'a', gpu: '' }, owner: 'ci' },
      { name: 'rack-b1', tags: { rack: 'b' } },
    ]) {
      expect((await t.api('POST', '/api/v1/machines', body)).statusCode).toBe(201);
    }
  });
  afterAll(async () => t?.close());

  it('--list: hosts grouped by state, profile, tag and owner, with their variables', async () => {
    const { stdout } = await ansible(['--list']);
    const inv = JSON.parse(stdout);
    const blade = (await t.api('GET', '/api/v1/machines?state=available')).json().items[0].name as string;
    expect(inv.state_enrolled.hosts.sort()).toEqual(['rack-a1', 'rack-b1']);
    expect(inv.state_available.hosts).toEqual([blade]);
    expect(inv.profile_blade.hosts).toEqual([blade]);
    expect(inv.owner_ci.hosts).toEqual(['rack-a1']);
    expect(inv.tag_rack_a.hosts).toEqual(['rack-a1']);
    expect(inv.tag_rack_b.hosts).toEqual(['rack-b1']);
    expect(inv.tag_gpu.hosts).toEqual(['rack-a1']);
    const vars = inv._meta.hostvars;
    expect(vars['rack-a1']).toMatchObject({ plinth_state: 'enrolled', plinth_owner: 'ci', plinth_tags: { rack: 'a', gpu: '' }, plinth_profile: null });
    expect(vars[blade]).toMatchObject({ plinth_state: 'available', plinth_profile: 'blade', plinth_vars: { hostname: 'web-01', ip: '10.0.0.11' } });
    expect(vars[blade].plinth_facts.system.serial).toBe(bladeFacts(1).system.serial);
    expect(vars[blade].plinth_identity.serial).toBe(bladeFacts(1).system.serial);
    expect(vars['rack-a1']).not.toHaveProperty('ansible_host');
  });

  it('--host: one machine; a deployed address is ansible_host', async () => {
    // What the installed OS reported when it came up (the deploy flow's callback) — set as the store keeps it.
    const { updateMachineRow } = await import('../../src/inventory/machine-rows.js');
    const m = (await t.api('GET', '/api/v1/machines/rack-b1')).json();
    await updateMachineRow(t.controller.services.store.db, m.id, { deployed_address: '192.0.2.25' }, new Date().toISOString());
    const { stdout } = await ansible(['--host', 'rack-b1']);
    expect(JSON.parse(stdout)).toMatchObject({ ansible_host: '192.0.2.25', plinth_state: 'enrolled', plinth_tags: { rack: 'b' } });
  });

  it('a refused token fails the inventory with the controller\'s reason', async () => {
    const err = (await ansible(['--list'], 'not-a-token').catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).not.toBe(0);
    // Ansible wraps its warnings: compare with the line breaks as spaces.
    expect(err.stderr.replace(/\s+/g, ' ')).toContain('plinth: GET /api/v1/machines failed: HTTP Error 401: Unauthorized: token is unknown, revoked or expired');
  });
});
