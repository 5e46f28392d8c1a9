/**
 * Every mount, loop device and lock an image build takes is registered here as soon as it is
 * taken, with the action that gives it back. On success the build releases them in order;
 * on any failure `unwind` releases whatever is still held, newest first, and keeps going when
 * one of them fails so that a stuck mount never leaves a loop device attached behind it.
 */
import { messageOf } from '../../core/errors.js';

export interface Held {
  /** Gives the resource back now (idempotent). */
  release(): Promise<void>;
}

interface Entry {
  label: string;
  undo: () => Promise<void>;
  done: boolean;
}

export class Teardown {
  private readonly entries: Entry[] = [];

  constructor(private readonly log: (line: string) => void) {}

  hold(label: string, undo: () => Promise<void>): Held {
    const entry: Entry = { label, undo, done: false };
    this.entries.push(entry);
    return {
      release: async () => {
        if (entry.done) return;
        entry.done = true;
        this.entries.splice(this.entries.indexOf(entry), 1);
        await entry.undo();
      },
    };
  }

  /** Releases everything still held, newest first; returns the failures it logged. */
  async unwind(): Promise<string[]> {
    const failures: string[] = [];
    while (this.entries.length > 0) {
      const entry = this.entries.pop()!;
      if (entry.done) continue;
      entry.done = true;
      try {
        await entry.undo();
      } catch (e) {
        const failure = `cleanup: ${entry.label}: ${messageOf(e)}`;
        failures.push(failure);
        this.log(failure);
      }
    }
    return failures;
  }
}
