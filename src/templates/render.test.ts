import { describe, expect, it } from 'vitest';
import { PlinthError } from '../core/errors.js';
import { parse as parseYaml } from 'yaml';
import { checkTemplate, renderArtifacts, renderTemplate } from './render.js';
import { MAX_INCLUDES_PER_RENDER } from './snippet-fs.js';
import { builtinSource, chainSources, MemoryTemplateSource, type TemplateSource } from './source.js';
import { TemplateError } from './template-error.js';
import { fixtureContext } from './test-fixtures.js';

const context = fixtureContext('static', 'cloud-init', 'user-data');
const MACHINE = context.machine.id;

/** Renders `body` as the machine's own cloud-init/user-data, with snippets from `snippets`. */
async function renderBody(body: string, snippets: Record<string, string> = {}) {
  const source = new MemoryTemplateSource([
    { origin: 'machine', owner: MACHINE, kind: 'cloud-init', name: 'user-data', body },
    ...Object.entries(snippets).map(([name, snippetBody]) => ({ origin: 'machine' as const, owner: MACHINE, kind: 'cloud-init' as const, name, body: snippetBody })),
  ]);
  return renderTemplate(source, 'cloud-init', 'user-data', context, { machine: MACHINE, profile: 'web' });
}

async function renderError(body: string, snippets: Record<string, string> = {}): Promise<TemplateError> {
  const error = await renderBody(body, snippets).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TemplateError);
  return error as TemplateError;
}

describe('resolution chain', () => {
  const source = new MemoryTemplateSource([
    { origin: 'site', kind: 'cloud-init', name: 'users', body: 'users: [] # site\n' },
    { origin: 'site', kind: 'cloud-init', name: 'network', body: 'version: 2\nethernets: {} # site\n' },
    { origin: 'profile', owner: 'web', kind: 'cloud-init', name: 'users', body: 'users: [] # profile web\n' },
    { origin: 'profile', owner: 'web', kind: 'cloud-init', name: 'packages', body: 'packages: [] # profile web\n' },
    { origin: 'profile', owner: 'db', kind: 'cloud-init', name: 'hostname', body: 'hostname: db # profile db\n' },
    { origin: 'machine', owner: 'm1', kind: 'cloud-init', name: 'packages', body: 'packages: [] # machine m1\n', id: 'override-17' },
  ]);

  it('takes each snippet from the most specific scope that defines it: machine > profile > site > built-in', async () => {
    const rendered = await renderTemplate(source, 'cloud-init', 'user-data', context, { machine: 'm1', profile: 'web' });
    expect(rendered.origins).toEqual({ 'user-data': 'builtin', hostname: 'builtin', users: 'profile', packages: 'machine', 'report-completion': 'builtin' });
    expect(rendered.overrideIds).toEqual({ users: 'profile:web:cloud-init/users', packages: 'override-17' });
    expect(rendered.body).toContain('users: [] # profile web');
    expect(rendered.body).toContain('packages: [] # machine m1');
    expect(rendered.body).not.toContain('# site');
  });

  it('falls back per snippet, not per template', async () => {
    const otherMachine = await renderTemplate(source, 'cloud-init', 'user-data', context, { machine: 'm2', profile: 'web' });
    expect(otherMachine.origins).toMatchObject({ users: 'profile', packages: 'profile', hostname: 'builtin' });
    const noProfile = await renderTemplate(source, 'cloud-init', 'user-data', context, { machine: 'm2' });
    expect(noProfile.origins).toMatchObject({ users: 'site', packages: 'builtin', hostname: 'builtin' });
    const network = await renderTemplate(source, 'cloud-init', 'network-config', context, {});
    expect(network.origins).toEqual({ 'network-config': 'builtin', network: 'site' });
  });

  it('overrides a template itself, and snippets included by snippets', async () => {
    const overridden = new MemoryTemplateSource([
      { origin: 'profile', owner: 'web', kind: 'preseed', name: 'preseed.cfg', body: "# custom\n{% include 'late-command' %}" },
      { origin: 'site', kind: 'preseed', name: 'ssh-keys', body: '    : keys from the site; \\\n' },
    ]);
    const rendered = await renderTemplate(overridden, 'preseed', 'preseed.cfg', fixtureContext('static', 'preseed', 'preseed.cfg'), { profile: 'web' });
    expect(rendered.origins).toEqual({ 'preseed.cfg': 'profile', 'late-command': 'builtin', 'ssh-keys': 'site', 'report-completion': 'builtin' });
    expect(rendered.body.startsWith('# custom\nd-i preseed/late_command string \\\n')).toBe(true);
    expect(rendered.body).toContain('    : keys from the site; \\\n    in-target curl');
  });

  it('lets an override add a template name of its own, served with the kind’s default content type', async () => {
    const custom = new MemoryTemplateSource([{ origin: 'site', kind: 'script', name: 'burn-in', body: '#!/bin/sh\necho {{ machine.name }}\n' }]);
    const rendered = await renderTemplate(custom, 'script', 'burn-in', context);
    expect(rendered).toMatchObject({ body: '#!/bin/sh\necho steady-osprey-91c2\n', contentType: 'text/x-shellscript; charset=utf-8', origins: { 'burn-in': 'site' } });
  });

  it('reads each snippet once per render, from one consistent view', async () => {
    const lookups: string[] = [];
    const counting: TemplateSource = {
      lookup: async (scope, kind, name) => {
        lookups.push(name);
        return builtinSource.lookup(scope, kind, name);
      },
    };
    const twice = new MemoryTemplateSource([{ origin: 'site', kind: 'cloud-init', name: 'user-data', body: "{% include 'hostname' %}{% include 'hostname' %}" }], counting);
    await renderTemplate(twice, 'cloud-init', 'user-data', context);
    expect(lookups).toEqual(['hostname']);
  });

  it('reports an unknown template as not found', async () => {
    await expect(renderTemplate(builtinSource, 'kickstart', 'nonesuch.cfg', context)).rejects.toMatchObject({ code: 'not_found', message: "template 'kickstart/nonesuch.cfg' not found" });
  });

  it('passes on a failing source’s own error instead of blaming the template', async () => {
    const down = new PlinthError('unavailable', 'database unreachable');
    const failing: TemplateSource = {
      lookup: async (scope, kind, name) => {
        if (name === 'users') throw down;
        return builtinSource.lookup(scope, kind, name);
      },
    };
    await expect(renderTemplate(failing, 'cloud-init', 'user-data', context)).rejects.toBe(down);
    await expect(renderTemplate(chainSources(failing), 'cloud-init', 'users', context)).rejects.toBe(down);
  });

  it('refuses unknown kinds and names that are not template names', async () => {
    await expect(renderTemplate(builtinSource, 'ansible' as never, 'x', context)).rejects.toMatchObject({ code: 'validation' });
    await expect(renderTemplate(builtinSource, 'cloud-init', '../user-data', context)).rejects.toMatchObject({ code: 'validation' });
  });
});

describe('cloud-config documents are merged, not concatenated', () => {
  const runcmdOf = (body: string) => (parseYaml(body) as { runcmd: unknown[] }).runcmd;

  it('keeps both runcmd lists when a snippet override adds runcmd: next to the completion report', async () => {
    const source = new MemoryTemplateSource([
      { origin: 'machine', owner: MACHINE, kind: 'cloud-init', name: 'packages', body: 'packages: [htop]\nruncmd:\n  - [touch, /etc/plinth-was-here]\n' },
    ]);
    const { body } = await renderTemplate(source, 'cloud-init', 'user-data', context, { machine: MACHINE });
    expect(body.startsWith('#cloud-config\n')).toBe(true);
    expect(body.match(/^runcmd:/gm)).toHaveLength(1);
    // cloud-init reads a repeated key as its last value: both entries must be in the one list, in order.
    expect(runcmdOf(body)).toEqual([['touch', '/etc/plinth-was-here'], ['/var/lib/plinth/report-first-boot']]);
    expect(body).toContain('    content: |\n      #!/bin/sh\n');
  });

  it('merges maps key by key and keeps a repeated equal value once, at any depth (autoinstall late-commands)', async () => {
    const source = new MemoryTemplateSource([
      { origin: 'site', kind: 'autoinstall', name: 'packages', body: '  packages: [htop]\n  late-commands:\n    - echo first\n' },
    ]);
    const { body } = await renderTemplate(source, 'autoinstall', 'user-data', fixtureContext('dhcp', 'autoinstall', 'user-data'));
    const doc = parseYaml(body) as { autoinstall: { 'late-commands': string[] } };
    expect(doc.autoinstall['late-commands'][0]).toBe('echo first');
    expect(doc.autoinstall['late-commands'].length).toBeGreaterThan(1);
    expect(body.match(/late-commands:/g)).toHaveLength(1);
  });

  it('refuses a key set twice to different values, naming it', async () => {
    const error = await renderError("#cloud-config\n{% include 'hostname' %}hostname: other\n");
    expect(error.message).toMatch(/cloud-init\/user-data: 'hostname' is set twice/);
  });

  it('leaves a document without repeated keys byte for byte, and refuses one that is not YAML', async () => {
    expect((await renderBody('#cloud-config\nruncmd: [ "a" ]   # as written\n')).body).toBe('#cloud-config\nruncmd: [ "a" ]   # as written\n');
    expect((await renderError('#cloud-config\nruncmd: [a\n')).message).toMatch(/not valid YAML/);
  });
});

describe('a template added under a new name is rendered in place of the main one', () => {
  const source = new MemoryTemplateSource([{ origin: 'profile', owner: 'web', kind: 'kickstart', name: 'rhel9.cfg', body: '# rhel9 for {{ hostname }}\n' }]);
  const ks = fixtureContext('dhcp', 'kickstart', 'ks.cfg');

  it('stores it under the main name with the main content type', async () => {
    const rendered = await renderArtifacts(source, 'kickstart', ks, { profile: 'web' }, { main: 'rhel9.cfg' });
    expect(Object.keys(rendered)).toEqual(['ks.cfg']);
    expect(rendered['ks.cfg']).toMatchObject({ body: `# rhel9 for ${ks.hostname}\n`, origins: { 'rhel9.cfg': 'profile' } });
    expect(rendered['ks.cfg']!.contentType).toBe((await renderArtifacts(builtinSource, 'kickstart', ks))['ks.cfg']!.contentType);
  });

  it('refuses a name nobody defines for this scope, naming the field', async () => {
    await expect(renderArtifacts(source, 'kickstart', ks, { profile: 'db' }, { main: 'rhel9.cfg' })).rejects.toMatchObject({ code: 'validation', details: { field: 'template' } });
  });
});

describe('errors name template, snippet, line and column', () => {
  it('an unknown variable in the template', async () => {
    const error = await renderError('#cloud-config\n# a comment\n\n    host: {{ machine.hostnam }}\n');
    expect(error.message).toBe('cloud-init/user-data:4:14: undefined variable: machine.hostnam');
    expect(error.code).toBe('validation');
    expect(error.details).toEqual({ template: 'cloud-init/user-data', line: 4, column: 14, reason: 'undefined variable: machine.hostnam' });
  });

  it('an unknown variable in a snippet, with the template that included it', async () => {
    const error = await renderError("#cloud-config\n{% include 'network' %}\n", { network: 'version: 2\n  id: {{ vars.nonesuch }}\n' });
    expect(error.message).toBe('cloud-init/network:2:10: undefined variable: vars.nonesuch (included by cloud-init/user-data)');
    expect(error.details).toMatchObject({ template: 'cloud-init/user-data', snippet: 'cloud-init/network', line: 2, column: 10 });
  });

  it('an unknown filter', async () => {
    const error = await renderError('a\nb: {{ hostname | shout }}\n');
    expect(error.message).toBe('cloud-init/user-data:2:4: undefined filter: shout');
  });

  it('a syntax error, in the template and in a snippet', async () => {
    expect((await renderError('a\n{% if %}yes{% endif %}\n')).message).toMatch(/^cloud-init\/user-data:2:\d+: /);
    const unclosed = await renderError("{% include 'users' %}", { users: 'x\ny\n{% for key in ssh.authorizedKeys %}\n' });
    expect(unclosed.message).toBe('cloud-init/users:3:1: tag {% for key in ssh.authorizedKeys %} not closed (included by cloud-init/user-data)');
    expect(unclosed.details).toMatchObject({ snippet: 'cloud-init/users', line: 3, column: 1 });
  });

  it('an include of a snippet nobody defines', async () => {
    const error = await renderError("#cloud-config\n  {% include 'nonesuch' %}\n");
    expect(error.message).toBe('cloud-init/user-data:2:3: snippet not found: cloud-init/nonesuch');
  });

  it('a required knob that is not set', async () => {
    const error = await renderError("# iso\nurl={{ os.isoUrl | required: 'os.isoUrl (the live server ISO)' }}\n");
    expect(error.message).toMatch(/^cloud-init\/user-data:2:\d+: os\.isoUrl \(the live server ISO\) is required by this template but is not set$/);
  });
});

describe('templates cannot reach the file system or JavaScript', () => {
  it.each([
    ["{% include '/etc/passwd' %}", 'invalid snippet name "/etc/passwd"'],
    ["{% include '../../../../etc/passwd' %}", 'invalid snippet name "../../../../etc/passwd"'],
    ["{% render '/etc/passwd' %}", 'invalid snippet name "/etc/passwd"'],
    ["{% layout '/etc/passwd' %}", 'invalid snippet name "/etc/passwd"'],
    ["{% include 'file:///etc/passwd' %}", 'invalid snippet name "file:///etc/passwd"'],
  ])('%s is refused', async (body, reason) => {
    const error = await renderError(body);
    expect(error.reason).toContain(reason);
    expect(error.message).not.toContain('root:');
  });

  it.each([
    ["{{ 'x' | constructor }}", 'undefined filter: constructor'],
    ['{{ machine.constructor }}', 'undefined variable: machine.constructor'],
    ['{{ machine.__proto__ }}', 'undefined variable: machine.__proto__'],
    ['{{ vars.constructor.constructor }}', 'undefined variable: vars.constructor'],
    ['{{ hostname.toString }}', 'undefined variable: hostname.toString'],
    ['{{ process.env }}', 'undefined variable: process'],
    ['{{ constructor }}', 'undefined variable: constructor'],
    ["{{ 'now' | date: '%Y' }}", "date: 'now' is refused"],
  ])('%s fails safely', async (body, reason) => {
    expect((await renderError(body)).reason).toContain(reason);
  });

  it('filters that read properties see own data only', async () => {
    const rendered = await renderBody("{{ network.nics | map: 'constructor' | json }} {{ network.nics | map: '__proto__' | json }}");
    expect(rendered.body).toBe('[null,null] [null,null]');
  });

  it('stops a snippet that includes itself', async () => {
    const error = await renderError("{% include 'loop' %}", { loop: "x{% include 'loop' %}" });
    expect(error.reason).toContain(`more than ${MAX_INCLUDES_PER_RENDER} snippet inclusions`);
  });

  it('stops a template that allocates without bound', async () => {
    const error = await renderError('{% for i in (1..100000000) %}x{% endfor %}');
    expect(error.reason).toContain('limit exceeded');
  });
});

describe('checkTemplate', () => {
  it('accepts a valid template without reading its snippets', () => {
    expect(() => checkTemplate('kickstart', 'storage', "{% if disk %}ignoredisk --only-use={{ disk.stablePath }}{% endif %}\n{% include 'not-defined-yet' %}\n")).not.toThrow();
  });

  it('reports syntax errors and unknown filters with line and column', () => {
    expect(() => checkTemplate('kickstart', 'storage', 'zerombr\n{% if disk %}\nautopart\n')).toThrow(/^kickstart\/storage:2:1: tag \{% if disk %\} not closed$/);
    expect(() => checkTemplate('kickstart', 'storage', 'zerombr\nclearpart {{ disk.name | upcase | shout }}\n')).toThrow(/^kickstart\/storage:2:11: undefined filter: shout$/);
    try {
      checkTemplate('preseed', 'network', 'd-i x\n{{ a\n');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(TemplateError);
      expect((e as TemplateError).details).toMatchObject({ template: 'preseed/network', line: 2, column: 1 });
    }
  });

  it('refuses unknown kinds and names that are paths', () => {
    expect(() => checkTemplate('cloud-init', 'snippets/../x', '')).toThrow(/invalid template name/);
    expect(() => checkTemplate('bogus' as never, 'x', '')).toThrow(/unknown template kind/);
  });
});
