/**
 * For machines nothing controls (no BMC, or one Plinth may not use): every power or boot
 * request becomes an instruction for a person. Capabilities are empty, the power state is
 * `unknown`, and each request fails with a `ManualActionRequired` error (an `unsupported`
 * ProviderError) whose message says exactly what to do, e.g. "power on machine rack4-07 and
 * make it boot from the network".
 *
 * How the lifecycle should treat it: a `ManualActionRequired` is not a failure of the
 * operation. The lifecycle records `action` as a pending operator task (shown in the UI /
 * CLI and sent to hooks), moves the machine into its `*-wait` state as if the request had
 * been sent, and waits for the evidence it waits for anyway — the boot trace (iPXE script
 * fetched, agent hello) or the installed OS reporting in — within the state's deadline. It
 * must not retry (nothing will change until a person acts) and must not mark the machine
 * failed before that deadline.
 */
import {
  ProviderError,
  type BootDevice,
  type BootOptions,
  type Capability,
  type Endpoint,
  type ManagementInterface,
  type PowerInterface,
  type PowerState,
  type PowerTarget,
  type Provider,
  type ProviderContext,
} from '../types.js';

export type ManualAction =
  | { kind: 'power'; machine: string; target: PowerTarget; bootDevice?: BootDevice }
  | { kind: 'reboot'; machine: string; bootDevice?: BootDevice }
  | { kind: 'boot-device'; machine: string; device: BootDevice; persistent: boolean };

const DEVICE_WORDS: Record<BootDevice, string> = {
  pxe: 'the network (PXE)',
  disk: 'its local disk',
  cd: 'the CD/DVD drive',
  'uefi-http': 'the network over UEFI HTTP boot',
};

/** What a person must do, in one sentence. */
export function describeManualAction(action: ManualAction, url?: string): string {
  const from = (d: BootDevice | undefined): string => (d ? ` and make it boot from ${DEVICE_WORDS[d]}${d === 'uefi-http' && url ? ` (${url})` : ''}` : '');
  switch (action.kind) {
    case 'power':
      if (action.target === 'on') return `power on machine ${action.machine}${from(action.bootDevice)}`;
      if (action.target === 'soft-off') return `shut down the operating system of machine ${action.machine} (or press its power button once)`;
      return `power off machine ${action.machine}`;
    case 'reboot':
      return `restart machine ${action.machine} (power it on if it is off)${from(action.bootDevice)}`;
    case 'boot-device':
      return `make machine ${action.machine} boot from ${DEVICE_WORDS[action.device]}${action.device === 'uefi-http' && url ? ` (${url})` : ''} ${action.persistent ? 'from now on' : 'at its next start'} (boot menu or firmware boot order)`;
  }
}

/** An operator must act: the message says what; `action` says it for programs. */
export class ManualActionRequired extends ProviderError {
  readonly action: ManualAction;
  constructor(action: ManualAction, url?: string) {
    super('manual', 'unsupported', `no power control: ${describeManualAction(action, url)}`);
    this.name = 'ManualActionRequired';
    this.action = action;
  }
}

export class ManualProvider implements Provider {
  readonly type = 'manual' as const;
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>();
  readonly power: PowerInterface;
  readonly management: ManagementInterface;
  /** Boot devices asked for per machine, so that the power instruction can repeat them. */
  private readonly wantedBoot = new Map<string, { device: BootDevice; url: string | undefined }>();

  constructor(_endpoint?: Endpoint) {
    this.power = {
      getPowerState: (ref, ctx) => this.getPowerState(ref, ctx),
      setPowerState: (ref, target, ctx) => this.setPowerState(ref, target, ctx),
      reboot: (ref, ctx) => this.reboot(ref, ctx),
    };
    this.management = {
      setBootDevice: (ref, device, options, ctx) => this.setBootDevice(ref, device, options, ctx),
    };
  }

  /** Nothing can read the power state: always `unknown`, no I/O. */
  async getPowerState(_ref: string, _ctx: ProviderContext): Promise<PowerState> {
    return 'unknown';
  }

  async setPowerState(ref: string, target: PowerTarget, _ctx: ProviderContext): Promise<void> {
    const boot = target === 'on' ? this.wantedBoot.get(ref) : undefined;
    throw new ManualActionRequired({ kind: 'power', machine: ref, target, ...(boot ? { bootDevice: boot.device } : {}) }, boot?.url);
  }

  async reboot(ref: string, _ctx: ProviderContext): Promise<void> {
    const boot = this.wantedBoot.get(ref);
    throw new ManualActionRequired({ kind: 'reboot', machine: ref, ...(boot ? { bootDevice: boot.device } : {}) }, boot?.url);
  }

  async setBootDevice(ref: string, device: BootDevice, options: BootOptions, _ctx: ProviderContext): Promise<void> {
    this.wantedBoot.set(ref, { device, url: options.url });
    throw new ManualActionRequired({ kind: 'boot-device', machine: ref, device, persistent: options.persistent ?? false }, options.url);
  }
}

export function createManualProvider(endpoint?: Endpoint): ManualProvider {
  return new ManualProvider(endpoint);
}
