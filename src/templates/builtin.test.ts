import { describe, expect, it } from 'vitest';
import { expectGolden } from '../../test/support/golden.js';
import { BUILTIN } from './builtin/index.js';
import { TEMPLATE_KINDS, isTemplateName } from './kinds.js';
import { renderArtifacts, renderTemplate } from './render.js';
import { builtinSource } from './source.js';
import { buildRenderContext } from './context.js';
import { FIXTURES, dhcpInput, fixtureContext } from './test-fixtures.js';

describe('built-in templates', () => {
  for (const fixture of FIXTURES) {
    describe(`${fixture} machine`, () => {
      for (const kind of TEMPLATE_KINDS) {
        for (const name of Object.keys(BUILTIN[kind].templates)) {
          it(`${kind}/${name} matches its golden file`, async () => {
            const rendered = await renderTemplate(builtinSource, kind, name, fixtureContext(fixture, kind, name));
            expectGolden(`templates/${fixture}/${kind}/${name}`, rendered.body);
            expect(Object.values(rendered.origins).every((o) => o === 'builtin')).toBe(true);
          });
        }
      }
    });
  }

  it('every name is a valid template name and no snippet shadows a template', () => {
    for (const kind of TEMPLATE_KINDS) {
      const { templates, snippets, artifacts } = BUILTIN[kind];
      for (const name of [...Object.keys(templates), ...Object.keys(snippets)]) expect(isTemplateName(name), `${kind}/${name}`).toBe(true);
      for (const name of Object.keys(snippets)) expect(Object.hasOwn(templates, name), `${kind}/${name}`).toBe(false);
      for (const name of artifacts) expect(Object.hasOwn(templates, name), `${kind}/${name}`).toBe(true);
    }
  });

  it('every snippet is used by some built-in render', async () => {
    for (const kind of TEMPLATE_KINDS) {
      const used = new Set<string>();
      for (const fixture of FIXTURES) {
        for (const name of Object.keys(BUILTIN[kind].templates)) {
          const rendered = await renderTemplate(builtinSource, kind, name, fixtureContext(fixture, kind, name));
          for (const snippet of Object.keys(rendered.origins)) used.add(snippet);
        }
      }
      expect(Object.keys(BUILTIN[kind].snippets).filter((s) => !used.has(s)), kind).toEqual([]);
    }
  });

  it('renders the same bytes for the same context', async () => {
    for (const kind of TEMPLATE_KINDS) {
      for (const name of Object.keys(BUILTIN[kind].templates)) {
        const first = await renderTemplate(builtinSource, kind, name, fixtureContext('static', kind, name));
        const second = await renderTemplate(builtinSource, kind, name, fixtureContext('static', kind, name));
        expect(Buffer.from(second.body).equals(Buffer.from(first.body)), `${kind}/${name}`).toBe(true);
      }
    }
  });

  it('renders a kind’s artifact set together', async () => {
    const artifacts = await renderArtifacts(builtinSource, 'cloud-init', fixtureContext('dhcp', 'cloud-init', 'user-data'));
    expect(Object.keys(artifacts)).toEqual(['user-data', 'meta-data', 'network-config']);
    expect(artifacts['user-data']!.contentType).toBe('text/cloud-config; charset=utf-8');
    expect(artifacts['network-config']!.origins).toEqual({ 'network-config': 'builtin', network: 'builtin' });
    expect(Object.keys(await renderArtifacts(builtinSource, 'autoinstall', fixtureContext('dhcp', 'autoinstall', 'user-data')))).toEqual(['user-data', 'meta-data']);
    await expect(renderArtifacts(builtinSource, 'ipxe', fixtureContext('dhcp', 'ipxe', 'anaconda'))).rejects.toMatchObject({ code: 'unsupported' });
  });

  it('puts the run token only where the installer or installed OS reports back', async () => {
    for (const kind of TEMPLATE_KINDS) {
      for (const name of Object.keys(BUILTIN[kind].templates)) {
        const context = fixtureContext('static', kind, name);
        const rendered = await renderTemplate(builtinSource, kind, name, context);
        const lines = rendered.body.split('\n').filter((l) => l.includes(context.token));
        for (const line of lines) expect(line, `${kind}/${name}`).toMatch(/Authorization: Bearer|^\s*token=|artifacts\//);
      }
    }
  });
});

describe('installer-native methods out of the box and with kernelArgs', () => {
  const bare = () => buildRenderContext(dhcpInput());
  const withArgs = () => buildRenderContext(dhcpInput({ kernelArgs: 'intel_iommu=on  nomodeset' }));

  it('boots Anaconda and the Ubuntu installer without any os.* setting (public mirrors by default)', async () => {
    const anaconda = (await renderTemplate(builtinSource, 'ipxe', 'anaconda', bare())).body;
    expect(anaconda).toContain('inst.repo=https://dl.fedoraproject.org/pub/fedora/linux/releases/41/Everything/x86_64/os ');
    const ubuntu = (await renderTemplate(builtinSource, 'ipxe', 'ubuntu-autoinstall', bare())).body;
    expect(ubuntu).toContain('set kernel-url https://releases.ubuntu.com/24.04/netboot/amd64/linux\n');
    expect(ubuntu).toContain('set initrd-url https://releases.ubuntu.com/24.04/netboot/amd64/initrd\n');
    expect(ubuntu).toContain('url=https://releases.ubuntu.com/24.04/ubuntu-24.04.3-live-server-amd64.iso autoinstall');
  });

  it("puts kernelArgs on the installed system's command line: after --- (Debian installer), bootloader --append (kickstart), a GRUB drop-in (autoinstall)", async () => {
    const ctx = withArgs();
    expect(ctx.os.kernelArgs).toBe('intel_iommu=on nomodeset');
    const debian = (await renderTemplate(builtinSource, 'ipxe', 'debian-installer', ctx)).body;
    expect(debian).toMatch(/ --- console=tty0 console=ttyS0,115200n8 intel_iommu=on nomodeset\n/);
    const ks = (await renderTemplate(builtinSource, 'kickstart', 'ks.cfg', ctx)).body;
    expect(ks).toContain("bootloader --append='console=tty0 console=ttyS0,115200n8 intel_iommu=on nomodeset'\n");
    const autoinstall = (await renderTemplate(builtinSource, 'autoinstall', 'user-data', ctx)).body;
    expect(autoinstall).toContain(`echo 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX intel_iommu=on nomodeset"' > /target/etc/default/grub.d/90-plinth-kernel-args.cfg`);
    expect((await renderTemplate(builtinSource, 'autoinstall', 'user-data', bare())).body).not.toContain('grub.d');
  });

  it('refuses kernelArgs a command line cannot carry, naming the field', () => {
    expect(() => buildRenderContext(dhcpInput({ kernelArgs: 'quiet; reboot' }))).toThrow(/^kernelArgs: /);
  });
});
