import type { ConsolePower } from '../../protocol/agent.js';
import type { Terminal } from './menu.js';

export type ConsolePowerAction = ConsolePower['action'];

/** What ends a console session: its terminal, the machine's power, and the controller to tell first. */
export interface ConsolePowerDeps {
  term: Terminal & { close(): void };
  power: { poweroff(): Promise<void>; reboot(): Promise<void> };
  /** Records the choice on the machine (POST /agent/v1/console/power); absent when the installer holds no credential. */
  report?: (action: ConsolePowerAction) => Promise<unknown>;
}

/**
 * How every console session ends (the menu's reboot / power off, the last screen's): the
 * controller is told first, so the machine's events say why it went down, then the terminal
 * is closed and the machine does it. A report that fails is shown and does not keep the
 * machine up: the person at the machine decided, and a controller that cannot be reached
 * must not be able to stop a power off.
 */
export async function consolePower(action: ConsolePowerAction, d: ConsolePowerDeps): Promise<void> {
  const what = action === 'reboot' ? 'Rebooting' : 'Powering off';
  if (d.report) {
    try {
      await d.report(action);
      d.term.write(`${what} (recorded on the controller).\n`);
    } catch (e) {
      d.term.write(`${what}; the controller was not told: ${(e as Error).message}\n`);
    }
  } else d.term.write(`${what} (this installer holds no credential to tell the controller with).\n`);
  d.term.close();
  if (action === 'poweroff') await d.power.poweroff();
  else await d.power.reboot();
}
