import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Db } from '../store/database.js';
import { STATES } from '../core/states.js';
import { countMachinesByStateAndPower } from '../inventory/machine-rows.js';
import type { ProviderCallRecord } from '../providers/resilient.js';

/** Power states a machine row can show (inventory/machine.ts `PowerInfo.state`). */
const POWER_STATES = ['on', 'off', 'unknown'] as const;

/** Run durations: a wipe or inspection takes minutes, a deploy up to an hour or so. */
const RUN_BUCKETS = [10, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 7200];
/** Provider calls: a Redfish GET in tens of ms, an IPMI power change or a vSphere task in seconds. */
const PROVIDER_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** What a metric family added by another component gets: the controller's registry. */
export type MetricsExtension = (registry: Registry) => void;

/**
 * The controller's Prometheus metrics, on a registry of its own (never prom-client's global
 * one: two controllers in one process, as in tests, must not count each other's events).
 *
 * Counters and histograms count what this controller process saw (its transitions, runs it
 * finished, boot requests it answered, provider calls it made); the machine gauges are read
 * from the database at each scrape, so they are the same on every controller sharing it.
 * Other components add their families with `extend` (e.g. webhook deliveries and event lag).
 */
export class ControllerMetrics {
  readonly registry = new Registry();
  private readonly transitions: Counter<'from' | 'to'>;
  private readonly runDuration: Histogram<'kind' | 'result'>;
  private readonly bootRequests: Counter<'stage' | 'code'>;
  private readonly dhcpAnswers: Counter<'kind' | 'client'>;
  private readonly providerDuration: Histogram<'provider' | 'operation'>;
  private readonly providerErrors: Counter<'provider' | 'operation' | 'failure'>;

  constructor(db: Db) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // One query feeds both gauges: a scrape starts every collect at once, so the second reuses the first one's read.
    let reading: Promise<{ state: string; power: string; count: number }[]> | null = null;
    const read = () => (reading ??= countMachinesByStateAndPower(db).finally(() => (reading = null)));
    // Each gauge lists every known value (0 included), then whatever else the rows hold.
    const tally = (rows: { state: string; power: string; count: number }[], key: 'state' | 'power', known: readonly string[]) => {
      const counts = new Map<string, number>(known.map((k) => [k, 0]));
      for (const r of rows) counts.set(r[key], (counts.get(r[key]) ?? 0) + r.count);
      return counts;
    };
    const machineGauge = (name: string, help: string, key: 'state' | 'power', known: readonly string[]) =>
      new Gauge({
        name,
        help,
        labelNames: [key],
        registers,
        async collect() {
          const counts = tally(await read(), key, known);
          this.reset();
          for (const [value, n] of counts) this.set({ [key]: value }, n);
        },
      });
    machineGauge('plinth_machines', 'Machines by provision state', 'state', STATES);
    machineGauge('plinth_machines_power', 'Machines by last known power state', 'power', POWER_STATES);
    this.transitions = new Counter({ name: 'plinth_transitions_total', help: 'Provision-state transitions made by this controller', labelNames: ['from', 'to'], registers });
    this.runDuration = new Histogram({
      name: 'plinth_run_duration_seconds',
      help: 'Runs (inspect, deploy, wipe) from creation to their end, by kind and result',
      labelNames: ['kind', 'result'],
      buckets: RUN_BUCKETS,
      registers,
    });
    this.bootRequests = new Counter({
      name: 'plinth_boot_requests_total',
      help: 'Requests to the boot endpoints (iPXE scripts, installer, boot files), by stage and HTTP status',
      labelNames: ['stage', 'code'],
      registers,
    });
    this.dhcpAnswers = new Counter({
      name: 'plinth_dhcp_answers_total',
      help: "Answers of Plinth's dnsmasq (dhcp.mode proxy/full) read from its log, by kind (ack, nak, proxy, boot-server, no-address) and client (ipxe, http-boot, uefi-pxe, bios-pxe, other)",
      labelNames: ['kind', 'client'],
      registers,
    });
    this.providerDuration = new Histogram({
      name: 'plinth_provider_call_duration_seconds',
      help: 'Provider calls (retries, backoff and the wait for a slot included), by provider and operation',
      labelNames: ['provider', 'operation'],
      buckets: PROVIDER_BUCKETS,
      registers,
    });
    this.providerErrors = new Counter({
      name: 'plinth_provider_call_errors_total',
      help: 'Provider calls that failed, by provider, operation and failure (timeout, unreachable, auth, …)',
      labelNames: ['provider', 'operation', 'failure'],
      registers,
    });
  }

  /** Lets another component add its metric families to this registry. */
  extend(extension: MetricsExtension): void {
    extension(this.registry);
  }

  transition(from: string, to: string): void {
    this.transitions.inc({ from, to });
  }

  runFinished(kind: string, result: string, seconds: number): void {
    this.runDuration.observe({ kind, result }, Math.max(0, seconds));
  }

  bootRequest(stage: string, code: number): void {
    this.bootRequests.inc({ stage, code: String(code) });
  }

  dhcpAnswer(kind: string, client: string): void {
    this.dhcpAnswers.inc({ kind, client });
  }

  providerCall(call: ProviderCallRecord): void {
    this.providerDuration.observe({ provider: call.provider, operation: call.operation }, call.durationMs / 1000);
    if (call.failure !== null) this.providerErrors.inc({ provider: call.provider, operation: call.operation, failure: call.failure });
  }

  /** The exposition: Prometheus text format 0.0.4. */
  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
