import { describe, expect, it } from 'vitest';
import { rsyncdConfig } from './rsyncd.js';

const plan = { installDir: '/d/trees/install', metadataDir: '/d/trees/metadata', address: '0.0.0.0', port: 831, hostsAllow: '', root: true };

describe('rsyncd.conf', () => {
  it("serves eDeploy's two modules read-only", () => {
    const conf = rsyncdConfig(plan);
    expect(conf).toMatch(/^read only = yes$/m);
    expect(conf).toContain('[install]\n  path = /d/trees/install\n');
    expect(conf).toContain('[metadata]\n  path = /d/trees/metadata\n');
    expect(conf).not.toMatch(/hosts allow/);
  });

  it('reads as root and chroots only when run as root', () => {
    expect(rsyncdConfig(plan)).toMatch(/^uid = 0\ngid = 0\nuse chroot = yes$/m);
    const user = rsyncdConfig({ ...plan, root: false });
    expect(user).toMatch(/^use chroot = no$/m);
    expect(user).not.toMatch(/^uid/m);
  });

  it('limits readers to hosts allow when set', () => {
    expect(rsyncdConfig({ ...plan, hostsAllow: '10.0.0.0/24, fd00::/64' })).toMatch(/^hosts allow = 10\.0\.0\.0\/24, fd00::\/64$/m);
  });
});
