/** The providers module: its interfaces, the registry and the resilience layer. */
export * from './types.js';
export { BUILTIN_PROVIDER_FACTORIES, ProviderRegistry, createProvider, defaultProviderRegistry, type CreateProviderOptions } from './registry.js';
export {
  CircuitOpenError,
  ProviderResilience,
  endpointKey,
  systemTimers,
  type CircuitState,
  type EndpointHealth,
  type ResilienceOptions,
  type ResilienceTimers,
} from './resilient.js';
export { ManualActionRequired, type ManualAction } from './manual/index.js';
