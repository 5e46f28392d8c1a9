import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { quotaOf, readCmdbText, readSpecsText, readStateText, SourceError } from '../matching/index.js';
import type { ApplyBodyType, PoolInputBody, ProfileInputBody } from './schemas.js';
import { NAME_PATTERN } from './schemas.js';
import { KERNEL_ARGS_PATTERN } from '../protocol/deploy.js';
import { validation } from '../core/errors.js';

/**
 * An eDeploy CONFIGDIR read into one profiles document, unchanged in meaning:
 * - `state` gives the profiles, their order and their counts (`'*'` is unlimited; a count
 *   is what is left to take, so it becomes the profile's quota);
 * - `<profile>.specs` is kept as text (explanations then cite its lines);
 * - `<profile>.cmdb` becomes a pool of the same name: a `generate(...)` model stays a model,
 *   a list (eDeploy's expanded form, `used` marks included) stays a list. No file or an
 *   empty list means no pool, as in eDeploy.
 * - the kernel arguments eDeploy gave the installed system — the `| … |` part of its PXE
 *   command line (given as an option: it is not in the CONFIGDIR) and the literal
 *   `grub_options('…')` calls of a profile's `.configure` — become `deploy.kernelArgs`.
 * Every file is parsed as a Python literal, never evaluated; a malformed one is an error
 * naming its file, line and column. Files `state` does not name are not read.
 */

export interface EdeployImport {
  body: ApplyBodyType;
  /** What was not imported, and why. */
  notes: string[];
}

const NAME_RE = new RegExp(NAME_PATTERN);

function readOptional(path: string): string | null {
  return existsSync(path) ? readFileSync(path, 'utf8') : null;
}

/** Python values as JSON: tuples become lists (which enumerate in generate(), as tuples do in Plinth). */
const toPlain = <T>(v: unknown): T => JSON.parse(JSON.stringify(v)) as T;

export interface EdeployImportOptions {
  /**
   * The kernel command line eDeploy's PXE configuration booted its installer with (its APPEND
   * line). eDeploy carried the arguments between its `|` marks (`… | console=ttyS0 |`) to the
   * installed system's boot loader; they become every imported profile's `deploy.kernelArgs`.
   */
  pxeCmdline?: string | undefined;
}

/** The arguments eDeploy's init kept for the installed system: `cut -d "|" -f 2` of the command line. */
export function edeployBootArgs(cmdline: string): string {
  return cmdline.includes('|') ? (cmdline.split('|')[1] ?? '').trim().replace(/\s+/g, ' ') : '';
}

/**
 * The `grub_options('…')` calls of a `.configure` script, which eDeploy added to the installed
 * system's boot loader after the command line's `| … |` arguments. Only string literals can be
 * read without running the script; any other argument is reported in `unread`.
 */
export function configureGrubOptions(text: string): { options: { value: string; line: number }[]; unread: number } {
  const options: { value: string; line: number }[] = [];
  let unread = 0;
  for (const m of text.matchAll(/^[^#\n]*\bgrub_options\(\s*(.*?)\s*\)\s*$/gm)) {
    const literal = /^(?:'([^'\\]*)'|"([^"\\]*)")$/.exec(m[1]!);
    const value = literal ? (literal[1] ?? literal[2] ?? '').trim() : null;
    if (value === null) unread++;
    else if (value !== '') options.push({ value, line: text.slice(0, m.index).split('\n').length });
  }
  return { options, unread };
}

/**
 * What a `.configure` script does that an import cannot carry over, each with its first line:
 * eDeploy ran it as Python 2 appended to a prelude of its own (`run`, `config`, `set_role`,
 * `var`, the `ipmi` module) in its installer, before writing the role's tree. Plinth does
 * not run it (Debian 12 has no Python 2, and the prelude's calls reach into eDeploy's
 * installer); the import names each kind of statement so that the operator knows what to
 * redo: the disk layout, files written into the system, BMC set-up, the role and version.
 */
export function configureFindings(text: string): string[] {
  const lines = text.split('\n');
  const first = (re: RegExp) => {
    const i = lines.findIndex((l) => !/^\s*#/.test(l) && re.test(l));
    return i < 0 ? null : { line: i + 1, count: lines.filter((l) => !/^\s*#/.test(l) && re.test(l)).length };
  };
  const out: string[] = [];
  const role = /^\s*set_role\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]/m.exec(text.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n'));
  const roleAt = first(/\bset_role\(/);
  if (roleAt) out.push(role ? `set_role('${role[1]}', '${role[2]}', …) (line ${roleAt.line}): deploy the tree ${role[1]}-${role[2]} instead` : `set_role(…) with a computed role (line ${roleAt.line})`);
  const run = first(/\brun\(/);
  if (run) out.push(`${run.count} run(…) command(s) from line ${run.line} (partitions, RAID, LVM, file systems: the disk layout)`);
  const config = first(/\bconfig\(/);
  if (config) out.push(`${config.count} config(…) file(s) written into the installed system from line ${config.line}`);
  const ipmi = first(/\bipmi\./);
  if (ipmi) out.push(`${ipmi.count} ipmi.… call(s) from line ${ipmi.line} (BMC users and network)`);
  const py2 = first(/^\s*print\s+["']/);
  if (py2) out.push(`Python 2 (a print statement, line ${py2.line})`);
  return out;
}

const KERNEL_ARGS_RE = new RegExp(KERNEL_ARGS_PATTERN);
const CARRIED = 'kernel arguments hold no quotes, \\, `, $, ;, |, < or >';

export function readEdeployConfigDir(dir: string, options: EdeployImportOptions = {}): EdeployImport {
  const bootArgs = options.pxeCmdline === undefined ? '' : edeployBootArgs(options.pxeCmdline);
  if (!KERNEL_ARGS_RE.test(bootArgs)) throw validation('pxeCmdline', `the arguments between '|' marks ('${bootArgs}') cannot be carried: ${CARRIED}`);
  const statePath = join(dir, 'state');
  const stateText = readOptional(statePath);
  if (stateText === null) throw new SourceError('no state file: not an eDeploy CONFIGDIR', { file: statePath, line: 1, column: 1 });
  const state = readStateText(stateText, { file: statePath, format: 'python' });
  const notes: string[] = [];
  const pools: PoolInputBody[] = [];
  const profiles: ProfileInputBody[] = [];
  const seen = new Set<string>();
  state.forEach((entry, i) => {
    const name = entry.profile;
    if (seen.has(name)) {
      notes.push(`${name}: listed again in state; only its first entry is imported (eDeploy gives failures back to the first one too)`);
      return;
    }
    seen.add(name);
    if (!NAME_RE.test(name) || name.length > 63) throw new SourceError(`profile name '${name}' cannot be used (letters, digits, '.', '_', '-'; at most 63)`, { file: statePath, line: 1, column: 1 });
    const specsPath = join(dir, `${name}.specs`);
    const specText = readOptional(specsPath);
    if (specText === null) {
      notes.push(`${name}: no ${name}.specs, not imported (eDeploy never matches such a profile)`);
      return;
    }
    readSpecsText(specText, { file: specsPath, format: 'python' });
    const cmdbPath = join(dir, `${name}.cmdb`);
    const cmdbText = readOptional(cmdbPath);
    let pool: string | null = null;
    if (cmdbText !== null) {
      const cmdb = readCmdbText(cmdbText, { file: cmdbPath, format: 'python' });
      if (cmdb.entries.length === 0) notes.push(`${name}: ${name}.cmdb is empty, so no pool (as in eDeploy)`);
      else {
        pool = name;
        pools.push(cmdb.form === 'generate' ? { name, generate: toPlain(cmdb.model) } : { name, entries: toPlain(cmdb.entries) });
      }
    }
    const configurePath = join(dir, `${name}.configure`);
    const configure = readOptional(configurePath);
    const grub = configure === null ? { options: [], unread: 0 } : configureGrubOptions(configure);
    if (configure !== null) {
      const findings = configureFindings(configure);
      notes.push(
        `${name}: ${name}.configure not imported (deploys use the profile's deploy configuration and templates)${grub.options.length ? `; its grub_options are the profile's kernelArgs` : ''}${
          findings.length ? `; not carried over: ${findings.join('; ')}` : ''
        }`,
      );
      if (grub.unread > 0) notes.push(`${name}: ${grub.unread} grub_options call(s) in ${name}.configure with a computed argument not imported; add them to deploy.kernelArgs by hand`);
    }
    for (const o of grub.options) {
      if (!KERNEL_ARGS_RE.test(o.value)) throw new SourceError(`grub_options('${o.value}') cannot be carried: ${CARRIED}`, { file: configurePath, line: o.line, column: 1 });
    }
    const kernelArgs = [bootArgs, ...grub.options.map((o) => o.value)].filter(Boolean).join(' ');
    if (kernelArgs.length > 4096) throw new SourceError(`${name}: its kernel arguments are longer than 4096 characters`, { file: configurePath, line: 1, column: 1 });
    const quota = quotaOf(entry.count, name);
    profiles.push({
      name,
      position: (i + 1) * 10,
      description: `imported from eDeploy ${dir}`,
      specText,
      quota: quota.unlimited ? 'unlimited' : Math.max(0, quota.remaining),
      pool,
      ...(kernelArgs ? { deploy: { kernelArgs } } : {}),
    });
  });
  return { body: { pools, profiles }, notes };
}
