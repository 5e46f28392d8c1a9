import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SCRIPT_DISK_LAYOUT_FILE, SCRIPT_FILE_MAX, SCRIPT_OUTPUT_MAX, type Script, type ScriptResult, type TreeParams } from '../../protocol/agent.js';
import { parseDiskLayout } from './protocol.js';
import { StepError } from './errors.js';

/**
 * Runs an operator's scripts on the machine, one after another (MAAS's commissioning and
 * testing scripts, hardcap's discovery scripts). Each gets its own directory with:
 *
 *   $PLINTH_VARIABLES   a JSON file of the machine's variables (identity, tags, profile,
 *                       matched spec variables, pool entry)
 *   $PLINTH_VAR_<NAME>  each scalar variable, its name upper-cased
 *   $PLINTH_OUTPUT_DIR  where the script leaves files to keep (results, logs)
 *   $PLINTH_SCRIPT      its own name
 *
 * Its output (stdout and stderr as they come) and files are reported whatever the outcome;
 * the first script that exits non-zero, is killed or runs past its timeout stops the run
 * with a StepError naming it.
 */
export interface ScriptRunnerDeps {
  log: (line: string) => void;
  report: (name: string, result: ScriptResult) => Promise<void>;
  /** Where script directories are made (default the system's temporary directory). */
  workDir?: string;
}

const MAX_FILES = 32;
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Environment names of the scalar variables: `pool.ip` → PLINTH_VAR_POOL_IP. */
export function variableEnv(variables: Record<string, unknown>): Record<string, string> {
  const env: Record<string, string> = {};
  const walk = (prefix: string, v: unknown) => {
    if (v === null || v === undefined) return;
    if (typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) walk(prefix ? `${prefix}_${k}` : k, x);
      return;
    }
    const name = `PLINTH_VAR_${prefix.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
    env[name] = Array.isArray(v) ? v.join(',') : String(v);
  };
  walk('', variables);
  return env;
}

function readHead(file: string, max: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(max);
    const n = readSync(fd, buf, 0, max, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** Files the script left, each cut at SCRIPT_FILE_MAX; odd names and non-files are skipped. */
function collectFiles(dir: string): ScriptResult['files'] {
  const files: ScriptResult['files'] = [];
  for (const name of readdirSync(dir).sort()) {
    if (files.length >= MAX_FILES || !FILE_NAME.test(name)) continue;
    const st = statSync(join(dir, name));
    if (!st.isFile()) continue;
    files.push({ name, sizeBytes: st.size, content: readHead(join(dir, name), SCRIPT_FILE_MAX).toString('base64'), truncated: st.size > SCRIPT_FILE_MAX });
  }
  return files;
}

export async function runScript(script: Script, variables: Record<string, unknown>, workDir: string): Promise<ScriptResult> {
  const dir = mkdtempSync(join(workDir, `plinth-script-${script.name}-`));
  try {
    const program = join(dir, script.name);
    const outputDir = join(dir, 'output');
    mkdirSync(outputDir);
    writeFileSync(program, script.content, { mode: 0o755 });
    writeFileSync(join(dir, 'variables.json'), JSON.stringify(variables, null, 2));
    const started = Date.now();
    let output = '';
    const keep = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.length > 2 * SCRIPT_OUTPUT_MAX) output = output.slice(-SCRIPT_OUTPUT_MAX);
    };
    const { exitCode, timedOut } = await new Promise<{ exitCode: number | null; timedOut: boolean }>((resolve) => {
      const child = spawn(program, [], {
        cwd: dir,
        // A process group of its own, so a timeout kills what it started too.
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...variableEnv(variables), PLINTH_SCRIPT: script.name, PLINTH_VARIABLES: join(dir, 'variables.json'), PLINTH_OUTPUT_DIR: outputDir },
      });
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, script.timeoutSeconds * 1000);
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      child.once('error', (e) => {
        clearTimeout(timer);
        keep(Buffer.from(`plinth-agent: cannot run ${script.name}: ${e.message}\n`));
        resolve({ exitCode: null, timedOut: false });
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ exitCode: code, timedOut });
      });
    });
    return { exitCode, timedOut, durationMs: Date.now() - started, output: output.slice(-SCRIPT_OUTPUT_MAX), files: collectFiles(outputDir) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A script's name and what it did. */
export interface ScriptRan {
  name: string;
  result: ScriptResult;
}

/** A failure of the operator's script `script`: code `script`, reported as its step `script-NAME`. */
export function scriptError(script: string, message: string, details: Record<string, unknown> = {}): StepError {
  const e = new StepError('script', message, { script, ...details });
  e.step = `script-${script}`;
  return e;
}

/** Runs the scripts in order; returns what each did (all passed: the first failure throws). */
export async function runScripts(scripts: readonly Script[], variables: Record<string, unknown>, deps: ScriptRunnerDeps): Promise<ScriptRan[]> {
  const ran: ScriptRan[] = [];
  for (const script of scripts) {
    deps.log(`script ${script.name}: running (timeout ${script.timeoutSeconds} s)`);
    const r = await runScript(script, variables, deps.workDir ?? tmpdir());
    const how = r.timedOut ? `timed out after ${script.timeoutSeconds} s` : r.exitCode === null ? 'was killed' : `exited ${r.exitCode}`;
    deps.log(`script ${script.name}: ${how} in ${(r.durationMs / 1000).toFixed(1)} s${r.files.length ? `, ${r.files.length} file(s)` : ''}`);
    await deps.report(script.name, r);
    ran.push({ name: script.name, result: r });
    if (r.exitCode !== 0) {
      const last = r.output.trimEnd().split('\n').at(-1)?.slice(0, 300) ?? '';
      throw scriptError(script.name, `script ${script.name} ${how}${last ? `: ${last}` : ''}`, { exitCode: r.exitCode, timedOut: r.timedOut });
    }
  }
  return ran;
}

/**
 * The disk layout a configure script computed ($PLINTH_OUTPUT_DIR/disk-layout.json), checked
 * as the controller checks a profile's; the last script that left one wins. Null when none
 * did. A file that is cut, not JSON or not a layout is a StepError naming the script.
 */
export function scriptDiskLayout(ran: readonly ScriptRan[]): { script: string; layout: TreeParams['diskLayout'] } | null {
  for (const { name, result } of [...ran].reverse()) {
    const file = result.files.find((f) => f.name === SCRIPT_DISK_LAYOUT_FILE);
    if (!file) continue;
    const field = `script[${name}].${SCRIPT_DISK_LAYOUT_FILE}`;
    const fail = (why: string) => scriptError(name, `${field} ${why}`, { field });
    if (file.truncated) throw fail(`is larger than ${SCRIPT_FILE_MAX} bytes`);
    let raw: unknown;
    try {
      raw = JSON.parse(Buffer.from(file.content, 'base64').toString('utf8'));
    } catch (e) {
      throw fail(`is not JSON: ${(e as Error).message}`);
    }
    try {
      return { script: name, layout: parseDiskLayout(raw, field) };
    } catch (e) {
      if (e instanceof StepError) throw scriptError(name, e.message, { field });
      throw e;
    }
  }
  return null;
}
