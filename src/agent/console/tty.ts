import { closeSync, openSync, writeSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { ReadStream } from 'node:tty';
import type { Terminal } from './menu.js';

/**
 * The installer's consoles as one line terminal: the first serial port (a BMC's
 * serial-over-LAN, a VM's serial socket) and the screen's first virtual terminal. What the
 * menu writes goes to both; a line typed on either answers. The kernel's line discipline
 * (canonical mode, echo) does the editing, so a plain serial line works. /init starts the
 * agent with its input on /dev/null and its output through `tee`, so the agent opens the
 * terminals itself.
 */
export interface InstallerConsoles extends Terminal {
  /** A login shell on the console that answered last, in a session of its own; resolves when it exits. */
  shell(): Promise<void>;
  close(): void;
}

interface Tty {
  path: string;
  out: number;
  input: ReadStream;
}

export const CONSOLE_TTYS = ['/dev/ttyS0', '/dev/tty1'] as const;

/** Opens the terminals that exist; null when none can be opened. */
export function openInstallerConsoles(paths: readonly string[] = CONSOLE_TTYS): InstallerConsoles | null {
  const ttys: Tty[] = [];
  for (const path of paths) {
    try {
      const out = openSync(path, 'w');
      const input = new ReadStream(openSync(path, 'r'));
      input.setEncoding('utf8');
      ttys.push({ path, out, input });
    } catch {
      // No such port (a machine without a UART), or no virtual terminals: the other one serves.
    }
  }
  if (ttys.length === 0) return null;
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  let last = ttys[0]!;
  for (const t of ttys) {
    let partial = '';
    t.input.on('data', (chunk: string) => {
      partial += chunk;
      const parts = partial.split(/\r\n|\r|\n/);
      partial = parts.pop() ?? '';
      for (const line of parts) {
        last = t;
        const w = waiting.shift();
        if (w) w(line);
        else lines.push(line);
      }
    });
    t.input.on('error', () => undefined);
  }
  return {
    write(text) {
      for (const t of ttys) {
        try {
          writeSync(t.out, text);
        } catch {
          // A terminal that went away (a hung-up serial line): the others still show it.
        }
      }
    },
    readLine() {
      const line = lines.shift();
      return line !== undefined ? Promise.resolve(line) : new Promise((resolve) => waiting.push(resolve));
    },
    async shell() {
      for (const t of ttys) t.input.pause();
      try {
        await new Promise<void>((resolve) => {
          const fd = openSync(last.path, 'r+');
          // setsid -c: the console becomes the shell's controlling terminal, so job control and Ctrl-C work.
          const child = spawn('setsid', ['-w', '-c', '/bin/bash', '-l'], { stdio: [fd, fd, fd] });
          const done = () => {
            closeSync(fd);
            resolve();
          };
          child.on('exit', done);
          child.on('error', done);
        });
      } finally {
        for (const t of ttys) t.input.resume();
      }
    },
    close() {
      for (const t of ttys) {
        t.input.destroy();
        closeSync(t.out);
      }
    },
  };
}
