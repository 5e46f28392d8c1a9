/**
 * Where provider types meet their implementations (Ironic's "hardware type lists its
 * interfaces"): `createProvider(type, endpoint)` builds the provider for an endpoint and
 * wraps it in the resilience layer, so that every caller gets per-endpoint concurrency
 * limits, timeouts, retries and the circuit breaker without asking for them.
 *
 * Providers are kept per appliance and credentials (see endpointKey) and handed out again
 * while the endpoint's settings stay the same: a BMC allows only a few sessions, so one
 * Redfish or vSphere session serves every operation instead of one per call. Two appliances
 * at one address (or one address reached with two sets of credentials) get a provider and a
 * breaker each. `close()` on a provider ends its sessions and forgets
 * it (the next `create` starts afresh); changed credentials replace the kept provider.
 *
 * The lab's `qemu` provider lives outside this folder; the composition root registers it
 * with `defaultProviderRegistry.register('qemu', factory)`.
 */
import { createHash } from 'node:crypto';
import { createIpmiProvider } from './ipmi/index.js';
import { createLibvirtProvider } from './libvirt/index.js';
import { createManualProvider } from './manual/index.js';
import { createProxmoxProvider } from './proxmox/index.js';
import { createRedfishProvider } from './redfish/index.js';
import { endpointKey, ProviderResilience } from './resilient.js';
import { ProviderError, type Endpoint, type Provider, type ProviderFactory, type ProviderType } from './types.js';
import { createVsphereProvider } from './vsphere/index.js';

export const BUILTIN_PROVIDER_FACTORIES: Partial<Record<ProviderType, ProviderFactory>> = {
  redfish: createRedfishProvider,
  ipmi: createIpmiProvider,
  libvirt: createLibvirtProvider,
  proxmox: createProxmoxProvider,
  vsphere: createVsphereProvider,
  manual: createManualProvider,
};

export interface CreateProviderOptions {
  /**
   * The endpoint limits and breakers to use: the registry's own by default (shared by every
   * provider it builds), another instance, or `false` for a bare provider (diagnostics).
   */
  resilience?: ProviderResilience | false;
  /**
   * The registered appliance the endpoint belongs to: its provider and breaker are its own,
   * even when another appliance shares the address.
   */
  appliance?: string;
}

/** A digest of everything that makes an endpoint's provider (secrets included, not kept in clear). */
function endpointFingerprint(endpoint: Endpoint): string {
  const { address, username, password, insecure, caCert, options } = endpoint;
  return createHash('sha256').update(JSON.stringify([address, username, password, insecure, caCert, options])).digest('hex');
}

export class ProviderRegistry {
  private readonly factories = new Map<ProviderType, ProviderFactory>();
  private readonly kept = new Map<string, { fingerprint: string; provider: Provider }>();
  /** The key each named appliance's provider is kept under, to end its sessions when its credentials change. */
  private readonly applianceKeys = new Map<string, string>();
  readonly resilience: ProviderResilience;

  constructor(factories: Partial<Record<ProviderType, ProviderFactory>> = BUILTIN_PROVIDER_FACTORIES, resilience: ProviderResilience = new ProviderResilience()) {
    for (const [type, factory] of Object.entries(factories)) if (factory) this.factories.set(type as ProviderType, factory);
    this.resilience = resilience;
  }

  /** Adds or replaces the implementation of a provider type. */
  register(type: ProviderType, factory: ProviderFactory): void {
    this.factories.set(type, factory);
  }

  has(type: ProviderType): boolean {
    return this.factories.has(type);
  }

  /**
   * The provider for an endpoint (the kept one while its settings are unchanged); no I/O
   * happens until its first call. With `resilience: false` a fresh, bare provider is built.
   */
  create(type: ProviderType, endpoint: Endpoint, options: CreateProviderOptions = {}): Provider {
    const factory = this.factories.get(type);
    if (!factory) throw new ProviderError(type, 'unsupported', `no provider is registered for type '${type}'`);
    const resilience = options.resilience ?? this.resilience;
    if (resilience === false) return factory(endpoint);
    const key = endpointKey(type, endpoint, options.appliance);
    const fingerprint = endpointFingerprint(endpoint);
    if (options.appliance !== undefined) {
      const owner = `${type}|${options.appliance}`;
      const previous = this.applianceKeys.get(owner);
      if (previous !== undefined && previous !== key) {
        // The appliance's address or credentials changed: its old sessions are ended.
        const stale = this.kept.get(previous);
        this.kept.delete(previous);
        if (stale) void stale.provider.close?.().catch(() => undefined);
      }
      this.applianceKeys.set(owner, key);
    }
    let entry = this.kept.get(key);
    if (!entry || entry.fingerprint !== fingerprint) {
      // New settings (e.g. rotated credentials): the old provider's sessions are ended.
      if (entry) void entry.provider.close?.().catch(() => undefined);
      entry = { fingerprint, provider: factory(endpoint) };
      this.kept.set(key, entry);
    }
    const inner = entry.provider;
    const forgetting: Provider = {
      type: inner.type,
      capabilities: inner.capabilities,
      power: inner.power,
      management: inner.management,
      close: async () => {
        if (this.kept.get(key)?.provider === inner) this.kept.delete(key);
        await inner.close?.();
      },
    };
    return resilience.wrap(forgetting, key, endpoint.address);
  }

  /**
   * Forgets what is kept for a registered appliance whose settings changed: its provider's
   * sessions are ended and its breaker and failure count dropped, so the next call starts
   * afresh with the new settings instead of failing fast on the old ones' failures.
   */
  forgetAppliance(type: ProviderType, appliance: string): void {
    const owner = `${type}|${appliance}`;
    const key = this.applianceKeys.get(owner);
    if (key === undefined) return;
    this.applianceKeys.delete(owner);
    const kept = this.kept.get(key);
    this.kept.delete(key);
    if (kept) void kept.provider.close?.().catch(() => undefined);
    this.resilience.forget(key);
  }

  /** Ends the sessions of every kept provider (at shutdown). */
  async closeAll(): Promise<void> {
    const providers = [...this.kept.values()].map((e) => e.provider);
    this.kept.clear();
    await Promise.all(providers.map((p) => p.close?.().catch(() => undefined)));
  }
}

/** The process-wide registry: built-in providers, one shared set of endpoint limits. */
export const defaultProviderRegistry = new ProviderRegistry();

/** `defaultProviderRegistry.create(type, endpoint, options)`. */
export function createProvider(type: ProviderType, endpoint: Endpoint, options: CreateProviderOptions = {}): Provider {
  return defaultProviderRegistry.create(type, endpoint, options);
}
