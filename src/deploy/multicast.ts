import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { newId } from '../core/ids.js';
import { PlinthError, validation } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { MulticastReceive, MulticastTransport } from '../protocol/agent.js';
import { interfaceAddress, makeSessionKey, parseUftpLine, UFTP_ANNOUNCE_ADDRESS, uftpExitMeaning, uftpId, uftpSenderArgs } from './uftp.js';

/**
 * Multicast deploy sessions: one image streamed once to every machine deploying it together.
 * The controller runs Debian's `udp-sender` (udpcast) as a supervised child fed by its own
 * stream of the image file, with a rate cap, a minimum number of receivers and a maximum
 * wait; each installer's agent runs `udp-receiver` into its verifying writer and falls back
 * to HTTP on its own (src/agent/steps/write-image.ts). udpcast does the reliable-multicast
 * part (NAKs, retransmits, rate control); nothing of it is reimplemented here.
 *
 * A session may run Debian's `uftp` instead (`transport: 'uftp'`, uftp.ts): encrypted, with
 * a time-to-live for crossing routers. uftp has no minimum of receivers nor a wait for them:
 * it announces for some seconds and sends to whoever answered. So the controller waits in
 * its place: uftp starts once `minReceivers` of the session's machines were handed it in
 * their hello (handOut), or `maxWaitSeconds` after the first was, and announces to exactly
 * those (a closed group of the client IDs they were given).
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
  transport: MulticastTransport;
  /** Rate cap in bits per second (`--max-bitrate`). */
  rateBitsPerSecond: number;
  /** The transfer starts once this many receivers joined (`--min-receivers`)… */
  minReceivers: number;
  /** …or this long after the first one joined, with those there are (`--max-wait`). */
  maxWaitSeconds: number;
  /** uftp: the multicast time-to-live (1: this segment; one more per router to cross). */
  ttl: number;
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
  /** Receivers the sender saw join (uftp: those that registered). */
  receivers: number;
  /** uftp: the machines handed the session in their hello (uftp starts for them). */
  handedOut: number;
  /** uftp: the fingerprint of the session's key, which receivers require. */
  serverFingerprint: string | null;
  openedAt: string;
  startedAt: string | null;
  endedAt: string | null;
  /** udp-sender's last statistics: image bytes sent and blocks sent again (uftp: NAKs, and their share of the blocks each receiver got). */
  bytesSent: number;
  retransmits: number;
  retransmitPercent: number;
  error: string | null;
}

export interface MulticastSessionsOptions {
  /** Interface the sender sends on (the provisioning network); '' lets udp-sender choose (uftp sessions need one). */
  interface: string;
  /** First UDP port of the sessions' range; each session takes two (portbase, portbase + 1). */
  portbase: number;
  /** Sessions at once (each takes two ports). */
  maxSessions?: number;
  /** Runs udp-sender and uftp through this command prefix (a network namespace in tests). */
  prefix?: readonly string[];
  /** A session that has not started sending this long after its maximum wait has found nobody and ends. Default 10 min. */
  noReceiversGraceMs?: number;
  /**
   * Ended sessions are listed this long after they end (default 1 h), and at most the
   * `keepEnded` most recent of them (default 100): an operator still sees the last mass
   * deploy's numbers, and a controller that runs for months does not keep every session.
   */
  keepEndedMs?: number;
  keepEnded?: number;
  log: Logger;
  now?: () => Date;
}

/** What a deploy asks for; absent fields take these defaults. */
export const MULTICAST_DEFAULTS: MulticastSettings = { transport: 'udpcast', rateBitsPerSecond: 200_000_000, minReceivers: 2, maxWaitSeconds: 60, ttl: 1 };

/** What uftpd needs to receive a session (protocol MulticastReceive.uftp). */
export type UftpReceive = NonNullable<MulticastReceive['uftp']>;

/** `200M`, `1.5G`, `800k`, or plain bits per second. */
export function parseRate(text: string, field: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(text.trim());
  const unit = { '': 1, k: 1e3, m: 1e6, g: 1e9 }[(m?.[2] ?? '').toLowerCase()];
  const bits = m && unit ? Math.round(Number(m[1]) * unit) : NaN;
  if (!Number.isFinite(bits) || bits < 1_000_000 || bits > 100_000_000_000) throw validation(field, `'${text}' is not a rate between 1M and 100G bits per second (e.g. 200M)`);
  return bits;
}

interface Session extends MulticastSessionView {
  file: string;
  child: ChildProcess | null;
  ended: Promise<void>;
  /** Ends the session (once): its state from `error`, its timers cleared, its key removed. */
  finish: () => void;
  timer: NodeJS.Timeout | null;
  uftp: UftpSession | null;
}

interface UftpSession {
  /** The session's key and the address it is sent from, made when it opens. */
  prepared: Promise<{ keyFile: string; fingerprint: string; sourceAddress: string }>;
  /** The controller's alone (0700): the session's private key. */
  keyDir: string;
  serverId: string;
  /** Client ID of each run handed the session, in the order they were. */
  clients: Map<string, string>;
  startTimer: NodeJS.Timeout | null;
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
    this.prune();
    for (const s of this.sessions.values()) {
      if (
        s.state === 'waiting' &&
        s.sha256 === image.sha256 &&
        s.transport === settings.transport &&
        s.rateBitsPerSecond === settings.rateBitsPerSecond &&
        s.minReceivers === settings.minReceivers &&
        s.maxWaitSeconds === settings.maxWaitSeconds &&
        s.ttl === settings.ttl
      ) {
        s.members.push(runId);
        return view(s);
      }
    }
    if (settings.transport === 'uftp' && !this.o.interface) {
      throw new PlinthError('conflict', 'uftp sessions need deploy.multicastInterface (or dhcp.interface): receivers accept only the address the session is sent from');
    }
    const portbase = this.freePortbase();
    let resolveEnded!: () => void;
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
      handedOut: 0,
      serverFingerprint: null,
      openedAt: this.now().toISOString(),
      startedAt: null,
      endedAt: null,
      bytesSent: 0,
      retransmits: 0,
      retransmitPercent: 0,
      error: null,
      file: image.file,
      child: null,
      ended: new Promise<void>((r) => (resolveEnded = r)),
      finish: () => {
        if (s.endedAt) return;
        for (const t of [s.timer, s.uftp?.startTimer]) if (t) clearTimeout(t);
        s.endedAt = this.now().toISOString();
        s.state = s.error ? 'failed' : 'done';
        if (s.uftp) rmSync(s.uftp.keyDir, { recursive: true, force: true });
        if (s.state === 'done') this.o.log.info({ session: s.id, bytes: s.bytesSent, retransmits: s.retransmits, retransmitPercent: s.retransmitPercent, receivers: s.receivers }, 'multicast session done');
        else this.o.log.warn({ session: s.id, error: s.error }, 'multicast session failed');
        resolveEnded();
      },
      timer: null,
      uftp: null,
    };
    this.sessions.set(s.id, s);
    this.o.log.info({ session: s.id, transport: s.transport, image: s.image, portbase: s.portbase, rate: s.rateBitsPerSecond, minReceivers: s.minReceivers, maxWait: s.maxWaitSeconds }, 'multicast session opened');
    // Nobody joined within the maximum wait (and a grace for slow boots): the session ends.
    s.timer = setTimeout(
      () => {
        if (s.state !== 'waiting') return;
        s.error = `no receiver started the transfer within ${s.maxWaitSeconds} s and the grace after it`;
        if (s.child) s.child.kill('SIGTERM');
        else s.finish();
      },
      s.maxWaitSeconds * 1000 + (this.o.noReceiversGraceMs ?? 600_000),
    );
    s.timer.unref();
    if (s.transport === 'uftp') this.prepareUftp(s);
    else this.startSender(s, createReadStream(image.file));
    return view(s);
  }

  /**
   * uftp: what run `runId`'s agent needs to receive the session (its hello hands it out),
   * the same on every call for that run. The run counts towards the session's minimum: uftp
   * starts when it is reached, or `maxWaitSeconds` after the first run was handed the
   * session. Null when the session no longer waits (or could not be prepared): the machine
   * deploys over HTTP.
   */
  async handOut(id: string, runId: string): Promise<UftpReceive | null> {
    const s = this.sessions.get(id);
    if (!s?.uftp || !s.members.includes(runId)) return null;
    const u = s.uftp;
    const prepared = await u.prepared.catch(() => null);
    if (!prepared || s.state !== 'waiting') return null;
    let clientId = u.clients.get(runId);
    if (!clientId) {
      clientId = uftpId(u.clients.size + 1);
      u.clients.set(runId, clientId);
      s.handedOut = u.clients.size;
      if (u.clients.size >= s.minReceivers) this.startUftp(s, prepared);
      else if (u.clients.size === 1) {
        u.startTimer = setTimeout(() => {
          if (s.state === 'waiting') this.startUftp(s, prepared);
        }, s.maxWaitSeconds * 1000);
        u.startTimer.unref();
      }
    }
    return { address: UFTP_ANNOUNCE_ADDRESS, serverId: u.serverId, serverAddress: prepared.sourceAddress, fingerprint: prepared.fingerprint, clientId };
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
    this.prune();
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
      } else if (!s.child && !s.endedAt) {
        // A uftp session whose sender never started.
        s.error ??= 'the controller stopped';
        s.finish();
      }
    }
    await Promise.all([...this.sessions.values()].map((s) => s.ended));
  }

  /**
   * Forgets ended sessions past `keepEndedMs` or beyond the `keepEnded` most recent. Only
   * ended ones: a waiting or sending session has its sender and its runs' hellos
   * (joinable, handOut) to serve, whereas an ended one answers those with null whether
   * it is kept or not, so its machines deploy over HTTP either way.
   */
  private prune(): void {
    const cutoff = this.now().getTime() - (this.o.keepEndedMs ?? 3_600_000);
    const ended = [...this.sessions.values()].filter((s) => s.endedAt !== null).sort((a, b) => b.endedAt!.localeCompare(a.endedAt!));
    ended.forEach((s, i) => {
      if (i >= (this.o.keepEnded ?? 100) || Date.parse(s.endedAt!) < cutoff) this.sessions.delete(s.id);
    });
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
    const child = this.supervise(s, 'udp-sender', args, (line) => this.onSenderLine(s, line), (code) => `udp-sender exited with ${code}`);
    // The image stream: its end is the transfer's end; udp-sender leaving early (no receivers
    // left, killed) breaks the pipe, which is the session's failure, not the controller's.
    pipeline(image, child.stdin!).catch(() => undefined);
  }

  /** uftp: the session's key and source address, made now; a failure ends the session (its machines deploy over HTTP). */
  private prepareUftp(s: Session): void {
    const keyDir = mkdtempSync(join(tmpdir(), 'plinth-uftp-'));
    const prepared = (async () => {
      const [key, sourceAddress] = await Promise.all([makeSessionKey(keyDir), interfaceAddress(this.o.interface, this.o.prefix)]);
      s.serverFingerprint = key.fingerprint;
      return { ...key, sourceAddress };
    })();
    // A random server ID: receivers accept this one only, from the session's address.
    s.uftp = { prepared, keyDir, serverId: uftpId(randomBytes(4).readUInt32BE() || 1), clients: new Map(), startTimer: null };
    prepared.catch((e: Error) => {
      s.error ??= `the uftp session could not be prepared: ${e.message}`;
      s.finish();
    });
  }

  private startUftp(s: Session, prepared: Awaited<UftpSession['prepared']>): void {
    const u = s.uftp!;
    if (u.startTimer) clearTimeout(u.startTimer);
    s.state = 'sending';
    s.startedAt = this.now().toISOString();
    const args = uftpSenderArgs({
      file: s.file,
      rateBitsPerSecond: s.rateBitsPerSecond,
      ttl: s.ttl,
      port: s.portbase,
      dataAddress: `232.5.5.${1 + (s.portbase - this.o.portbase) / 2}`,
      sourceAddress: prepared.sourceAddress,
      serverId: u.serverId,
      keyFile: prepared.keyFile,
      clients: [...u.clients.values()],
    });
    this.o.log.info({ session: s.id, clients: u.clients.size }, 'multicast session sending (uftp)');
    let blocks = 0;
    this.supervise(
      s,
      'uftp',
      args,
      (line) => {
        const e = parseUftpLine(line);
        if (e?.kind === 'registered') s.receivers++;
        else if (e?.kind === 'file') blocks = e.blocks;
        else if (e?.kind === 'received') s.bytesSent = s.sizeBytes;
        else if (e?.kind === 'naks') {
          // Each receiver NAKs what it missed: the share of the image a receiver asked for again, on average.
          s.retransmits += e.count;
          s.retransmitPercent = blocks && s.receivers ? Math.round((s.retransmits / (blocks * s.receivers)) * 1000) / 10 : 0;
        }
      },
      (code) => `uftp: ${uftpExitMeaning(code)}`,
    );
  }

  /** Runs the session's sender; its output line by line to `onLine`, its exit ends the session. */
  private supervise(s: Session, tool: string, args: string[], onLine: (line: string) => void, failure: (code: number) => string): ChildProcess {
    const [command, ...prefixArgs] = [...(this.o.prefix ?? []), tool];
    const child = spawn(command!, [...prefixArgs, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    s.child = child;
    // Each stream keeps its own unfinished line: a chunk of one must not end a line of the other.
    for (const stream of [child.stdout, child.stderr]) {
      let pending = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => {
        pending += d.replaceAll('\r', '\n');
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) onLine(line.trim());
      });
    }
    let exited = false;
    const exit = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
      if (exited) return;
      exited = true;
      if (error) s.error ??= `${tool} did not start: ${error.message}`;
      else if (code !== 0) s.error ??= code === null ? `${tool} exited with ${signal}` : failure(code);
      s.finish();
    };
    child.once('error', (e) => exit(null, null, e));
    child.once('close', (code, signal) => exit(code, signal));
    return child;
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
  const { file: _f, child: _c, ended: _e, finish: _fi, timer: _t, uftp: _u, ...rest } = s;
  return { ...rest, members: [...rest.members] };
}
