/**
 * The provider interfaces (Ironic's split, see STYLE.md): **power** and **management** differ
 * per platform; what a machine boots into and how the OS reaches its disk are shared and live
 * elsewhere. A provider gets everything through its arguments and a ProviderContext; it
 * never reaches into the store or the API. Only lifecycle/ calls providers.
 */
import { PlinthError, type ErrorCode } from '../core/errors.js';

export type PowerState = 'on' | 'off' | 'unknown';
export type PowerTarget = 'on' | 'off' | 'soft-off';
export type BootDevice = 'pxe' | 'disk' | 'cd' | 'uefi-http';
export type BootMode = 'uefi' | 'legacy';

export const PROVIDER_TYPES = ['redfish', 'ipmi', 'libvirt', 'proxmox', 'vsphere', 'qemu', 'manual'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

/**
 * What a provider can do. Asking for something it lacks is an `unsupported` ProviderError.
 * Two capabilities promise behaviour rather than an operation, and the conformance suite
 * holds a provider to them: `boot.read-back` — after writing boot settings the provider reads
 * them back from the appliance and fails (never reports done) when the appliance kept
 * something else; `sessions` — the provider holds a login session and replaces it, once,
 * when the appliance has forgotten it.
 */
export type Capability =
  | 'power'
  | 'power.soft-off'
  | 'boot.pxe'
  | 'boot.disk'
  | 'boot.cd'
  | 'boot.uefi-http'
  | 'boot.persistent'
  | 'boot.mode'
  | 'boot.read-back'
  | 'sessions'
  | 'vmedia'
  | 'enumerate';

export interface BootOptions {
  /** Keep the device for every following boot (default: next boot only). */
  persistent?: boolean;
  /** Firmware mode to boot in, where the platform lets one choose. */
  mode?: BootMode;
  /** For `uefi-http`: the URL the firmware fetches. */
  url?: string;
}

/** How to reach one appliance (a BMC, a hypervisor, a manager endpoint). Secrets are decrypted by the caller. */
export interface Endpoint {
  /** host[:port] for IPMI, a URL for HTTP APIs, a libvirt URI for libvirt, a lab directory for qemu. */
  address: string;
  username?: string;
  password?: string;
  /** Skip TLS verification (explicit opt-out). */
  insecure?: boolean;
  /** PEM CA bundle to verify this appliance's certificate. */
  caCert?: string;
  /** Provider-specific options (IPMI cipher suite, Proxmox node, Redfish quirk override…). */
  options?: Record<string, unknown>;
}

export interface ProviderLog {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export interface ProviderContext {
  /** Aborts the call (timeouts and shutdown arrive this way). */
  signal?: AbortSignal;
  /** Per-call timeout in milliseconds; every network or process call honours it. */
  timeoutMs: number;
  log: ProviderLog;
}

/** One system behind an endpoint, as the endpoint describes it. */
export interface DiscoveredSystem {
  /** Provider-specific reference used in every later call (Redfish system path, domain UUID, vmid…). */
  ref: string;
  name?: string;
  systemUuid?: string;
  serial?: string;
  manufacturer?: string;
  productName?: string;
  macs: string[];
  powerState?: PowerState;
}

export interface PowerInterface {
  /** Reads the power state. Network I/O; no side effect. */
  getPowerState(ref: string, ctx: ProviderContext): Promise<PowerState>;
  /**
   * Switches power. Idempotent: asking for the state the system is already in succeeds.
   * `soft-off` asks the OS to shut down (ACPI) and returns once the request is accepted.
   */
  setPowerState(ref: string, target: PowerTarget, ctx: ProviderContext): Promise<void>;
  /** Hard reset of a running system; powers on a system that is off. */
  reboot(ref: string, ctx: ProviderContext): Promise<void>;
}

export interface ManagementInterface {
  /** Sets what the system boots from next (or always, with `persistent`). Takes effect at the next power-on or reset. */
  setBootDevice(ref: string, device: BootDevice, options: BootOptions, ctx: ProviderContext): Promise<void>;
  /** Inserts an ISO by URL as virtual CD (capability `vmedia`). */
  insertVirtualMedia?(ref: string, url: string, ctx: ProviderContext): Promise<void>;
  /** Ejects virtual media; succeeds when nothing is inserted. */
  ejectVirtualMedia?(ref: string, ctx: ProviderContext): Promise<void>;
  /** Lists the systems behind the endpoint (capability `enumerate`). */
  listSystems?(ctx: ProviderContext): Promise<DiscoveredSystem[]>;
  /**
   * Where a client on the controller's host reaches a TCP port of the system when the platform
   * forwards it (a lab VM behind QEMU's user network); null when the port is not forwarded.
   */
  forwardedPort?(ref: string, guestPort: number, ctx: ProviderContext): Promise<ForwardedPort | null>;
}

/** A host address and port that lead to a system's own port. */
export interface ForwardedPort {
  address: string;
  port: number;
}

export interface Provider {
  readonly type: ProviderType;
  readonly capabilities: ReadonlySet<Capability>;
  readonly power: PowerInterface;
  readonly management: ManagementInterface;
  /** Releases sessions and connections. */
  close?(): Promise<void>;
}

export type ProviderFactory = (endpoint: Endpoint) => Provider;

/**
 * Why a provider call failed, classified by what the caller should do about it:
 * `transient` and `timeout` may be retried with backoff; `auth`, `unsupported`, `not-found`
 * and `protocol` must not be.
 */
export type ProviderFailure = 'auth' | 'timeout' | 'unreachable' | 'transient' | 'unsupported' | 'not-found' | 'protocol';

/**
 * What a provider failure means to a caller of the API: the thing asked of the appliance is
 * unsupported, the system is not there, or the appliance failed (refused the credentials,
 * answered badly, timed out, was unreachable).
 */
export function providerErrorCode(failure: ProviderFailure): ErrorCode {
  if (failure === 'unsupported') return 'unsupported';
  if (failure === 'not-found') return 'not_found';
  return 'provider_failed';
}

export class ProviderError extends PlinthError {
  readonly provider: string;
  readonly failure: ProviderFailure;
  constructor(provider: string, failure: ProviderFailure, message: string, cause?: unknown) {
    super(providerErrorCode(failure), `${provider}: ${message}`, { cause, details: { provider, failure } });
    this.name = 'ProviderError';
    this.provider = provider;
    this.failure = failure;
  }
  get retryable(): boolean {
    return this.failure === 'transient' || this.failure === 'timeout' || this.failure === 'unreachable';
  }
}

/** Throws `unsupported` unless the provider declares the capability. */
export function requireCapability(p: Provider, cap: Capability): void {
  if (!p.capabilities.has(cap)) throw new ProviderError(p.type, 'unsupported', `does not support ${cap}`);
}
