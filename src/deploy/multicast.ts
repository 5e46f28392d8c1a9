import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { newId } from '../core/ids.js';
import { PlinthError, validation } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

/**
 * Multicast deploy sessions: one image streamed once to every machine deploying it together.
 * The controller runs Debian's `udp-sender` (udpcast) as a supervised child fed by its own
 * stream of the image file, with a rate cap, a minimum number of receivers and a maximum
 * wait; each installer's agent runs `udp-receiver` into its verifying writer and falls back
 * to HTTP on its own (src/agent/steps/write-image.ts). udpcast does the reliable-multicast
 * part (NAKs, retransmits, rate control); nothing of it is reimplemented here.
 *
 * A session is `waiting` (receivers may join: a deploy of the same image asking for
 * multicast joins it), then `sending` (udp-sender started the transfer: a machine arriving
 * now gets no session and deploys over HTTP), then `done` or `failed`. Sessions live in this
 * controller's memory and its children: a controller restart ends them, and their machines
 * complete over HTTP.
 */

export const SESSION_STATES = ['waiting', 'sending', 'done', 'failed'] as const;
export type SessionState = (typeof SESSION_STATES)[number];

export interface MulticastSettings {
  /** Rate cap in bits per second (`--max-bitrate`). */
  rateBitsPerSecond: number;
  /** The transfer starts once this many receivers joined (`--min-receivers`)… */
  minReceivers: number;
  /** …or this long after the first one joined, with those there are (`--max-wait`). */
  maxWaitSeconds: number;
}

export interface MulticastSessionView extends MulticastSettings {
  id: string;
  image: string;
  sha256: string;
  sizeBytes: number;
  portbase: number;
  state: SessionState;
  /** Runs that were handed this session. */
  members: string[];
  /** Receivers udp-sender saw join. */
  receivers: number;
  openedAt: string;
  startedAt: string | null;
  endedAt: string | null;
  /** udp-sender's last statistics: image bytes sent and blocks sent again. */
  bytesSent: number;
  retransmits: number;
  retransmitPercent: number;
  error: string | null;
}

export interface MulticastSessionsOptions {
  /** Interface udp-sender sends on (the provisioning network); '' lets udp-sender choose. */
  interface: string;
  /** First UDP port of the sessions' range; each session takes two (portbase, portbase + 1). */
  portbase: number;
  /** Sessions at once (each takes two ports). */
  maxSessions?: number;
  /** Runs udp-sender through this command prefix (a network namespace in tests). */
  prefix?: readonly string[];
  /** A session that has not started sending this long after its maximum wait has found nobody and ends. Default 10 min. */
  noReceiversGraceMs?: number;
  log: Logger;
  now?: () => Date;
}

/** What a deploy asks for; absent fields take these defaults. */
export const MULTICAST_DEFAULTS: MulticastSettings = { rateBitsPerSecond: 200_000_000, minReceivers: 2, maxWaitSeconds: 60 };

/** `200M`, `1.5G`, `800k`, or plain bits per second. */
export function parseRate(text: string, field: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(text.trim());
  const unit = { '': 1, k: 1e3, m: 1e6, g: 1e9 }[(m?.[2] ?? '').toLowerCase()];
  const bits = m && unit ? Math.round(Number(m[1]) * unit) : NaN;
  if (!Number.isFinite(bits) || bits < 1_000_000 || bits > 100_000_000_000) throw validation(field, `'${text}' is not a rate between 1M and 100G bits per second (e.g. 200M)`);
  return bits;
}

interface Session extends MulticastSessionView {
  child: ChildProcess | null;
  ended: Promise<void>;
  timer: NodeJS.Timeout | null;
}

export class MulticastSessions {
  private readonly sessions = new Map<string, Session>();
  private readonly now: () => Date;

  constructor(private readonly o: MulticastSessionsOptions) {
    this.now = o.now ?? (() => new Date());
  }

  /**
   * The waiting session of this image version with these settings, joined by `runId`; or a
   * new one, whose udp-sender starts now and is fed from `imageFile`. Throws `conflict`
   * when every port pair is taken.
   */
  join(image: { name: string; sha256: string; sizeBytes: number; file: string }, settings: MulticastSettings, runId: string): MulticastSessionView {
    for (const s of this.sessions.values()) {
      if (
        s.state === 'waiting' &&
        s.sha256 === image.sha256 &&
        s.rateBitsPerSecond === settings.rateBitsPerSecond &&
        s.minReceivers === settings.minReceivers &&
        s.maxWaitSeconds === settings.maxWaitSeconds
      ) {
        s.members.push(runId);
        return view(s);
      }
    }
    const portbase = this.freePortbase();
    const s: Session = {
      id: newId(),
      image: image.name,
      sha256: image.sha256,
      sizeBytes: image.sizeBytes,
      portbase,
      ...settings,
      state: 'waiting',
      members: [runId],
      receivers: 0,
      openedAt: this.now().toISOString(),
      startedAt: null,
      endedAt: null,
      bytesSent: 0,
      retransmits: 0,
      retransmitPercent: 0,
      error: null,
      child: null,
      ended: Promise.resolve(),
      timer: null,
    };
    this.sessions.set(s.id, s);
    this.startSender(s, createReadStream(image.file));
    return view(s);
  }

  /** The session if receivers may still join it (it has not started sending). */
  joinable(id: string): MulticastSessionView | null {
    const s = this.sessions.get(id);
    return s && s.state === 'waiting' ? view(s) : null;
  }

  get(id: string): MulticastSessionView | null {
    const s = this.sessions.get(id);
    return s ? view(s) : null;
  }

  list(): MulticastSessionView[] {
    return [...this.sessions.values()].map(view);
  }

  /** Resolves when the session's udp-sender has exited. */
  async ended(id: string): Promise<MulticastSessionView | null> {
    const s = this.sessions.get(id);
    if (!s) return null;
    await s.ended;
    return view(s);
  }

  /** Ends every session (controller shutdown); their receivers complete over HTTP. */
  async stop(): Promise<void> {
    for (const s of this.sessions.values()) {
      if (s.child && s.child.exitCode === null && s.child.signalCode === null) {
        s.error ??= 'the controller stopped';
        s.child.kill('SIGTERM');
      }
    }
    await Promise.all([...this.sessions.values()].map((s) => s.ended));
  }

  private freePortbase(): number {
    const max = this.o.maxSessions ?? 16;
    const taken = new Set([...this.sessions.values()].filter((s) => s.state === 'waiting' || s.state === 'sending').map((s) => s.portbase));
    for (let i = 0; i < max; i++) {
      const p = this.o.portbase + 2 * i;
      if (!taken.has(p)) return p;
    }
    throw new PlinthError('conflict', `${max} multicast sessions are open already; wait for one to end or deploy over HTTP`);
  }

  private startSender(s: Session, image: Readable): void {
    const args = [
      '--nokbd',
      '--portbase',
      String(s.portbase),
      '--max-bitrate',
      String(s.rateBitsPerSecond),
      '--min-receivers',
      String(s.minReceivers),
      '--max-wait',
      String(s.maxWaitSeconds),
      ...(this.o.interface ? ['--interface', this.o.interface] : []),
    ];
    const [command, ...prefixArgs] = [...(this.o.prefix ?? []), 'udp-sender'];
    const child = spawn(command!, [...prefixArgs, ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
    s.child = child;
    const log = this.o.log;
    log.info({ session: s.id, image: s.image, portbase: s.portbase, rate: s.rateBitsPerSecond, minReceivers: s.minReceivers, maxWait: s.maxWaitSeconds }, 'multicast session opened');
    // The image stream: its end is the transfer's end; udp-sender leaving early (no receivers
    // left, killed) breaks the pipe, which is the session's failure, not the controller's.
    pipeline(image, child.stdin).catch(() => undefined);
    let pending = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      pending += d.replaceAll('\r', '\n');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) this.onSenderLine(s, line.trim());
    });
    // Nobody joined within the maximum wait (and a grace for slow boots): the session ends.
    s.timer = setTimeout(
      () => {
        if (s.state !== 'waiting') return;
        s.error = `no receiver started the transfer within ${s.maxWaitSeconds} s and the grace after it`;
        child.kill('SIGTERM');
      },
      s.maxWaitSeconds * 1000 + (this.o.noReceiversGraceMs ?? 600_000),
    );
    s.timer.unref();
    s.ended = new Promise<void>((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
        if (s.endedAt) return resolve();
        if (s.timer) clearTimeout(s.timer);
        s.endedAt = this.now().toISOString();
        if (error) s.error ??= `udp-sender did not start: ${error.message}`;
        else if (code !== 0) s.error ??= `udp-sender exited with ${code ?? signal}`;
        s.state = s.error ? 'failed' : 'done';
        if (s.state === 'done') log.info({ session: s.id, bytes: s.bytesSent, retransmits: s.retransmits, retransmitPercent: s.retransmitPercent, receivers: s.receivers }, 'multicast session done');
        else log.warn({ session: s.id, error: s.error }, 'multicast session failed');
        resolve();
      };
      child.once('error', (e) => finish(null, null, e));
      child.once('close', (code, signal) => finish(code, signal));
    });
  }

  /** udp-sender's stderr, line by line: joins, the start, and the running statistics. */
  private onSenderLine(s: Session, line: string): void {
    if (line.startsWith('New connection from')) s.receivers++;
    else if (line.startsWith('Starting transfer')) {
      s.state = 'sending';
      s.startedAt = this.now().toISOString();
      this.o.log.info({ session: s.id, receivers: s.receivers }, 'multicast session sending');
    } else {
      // bytes=  8 971 872  re-xmits=0000209 (  3.3%) slice=0112 -   1
      const m = /^bytes=\s*([\d ]+?)\s+re-xmits=(\d+)\s*\(\s*([\d.]+)%\)/.exec(line);
      if (m) {
        s.bytesSent = Number(m[1]!.replaceAll(' ', ''));
        s.retransmits = Number(m[2]);
        s.retransmitPercent = Number(m[3]);
      }
    }
  }
}

function view(s: Session): MulticastSessionView {
  const { child: _c, ended: _e, timer: _t, ...rest } = s;
  return { ...rest, members: [...rest.members] };
}
