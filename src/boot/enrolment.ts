import type { Clock } from '../core/clock.js';

/**
 * Enrolment of unknown machines: whoever can reach the boot endpoint can invent identities,
 * so each one costs a machine row, a run and events. A token bucket (per controller) bounds
 * the rate: `burst` enrolments at once (a rack powered on together), then `ratePerSecond`.
 */
export class EnrolmentGate {
  private tokens: number;
  private last: number;

  constructor(
    private readonly o: { enabled: boolean; ratePerSecond: number; burst: number },
    private readonly clock: Clock,
  ) {
    this.tokens = o.burst;
    this.last = clock.now().getTime();
  }

  isEnabled(): boolean {
    return this.o.enabled;
  }

  /** Null when this enrolment may go ahead (and takes its token), else why not. */
  admit(): string | null {
    if (!this.o.enabled) return 'this controller does not enrol unknown machines (enrolment.enabled is false); create the machine first';
    const now = this.clock.now().getTime();
    this.tokens = Math.min(this.o.burst, this.tokens + ((now - this.last) / 1000) * this.o.ratePerSecond);
    this.last = now;
    if (this.tokens < 1) return 'too many unknown machines are enrolling at once (enrolment.ratePerSecond)';
    this.tokens -= 1;
    return null;
  }
}
