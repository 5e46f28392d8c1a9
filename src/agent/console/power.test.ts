import { describe, expect, it } from 'vitest';
import { consolePower, type ConsolePowerDeps } from './power.js';

/** Everything the end of a console session does, in the order it did it. */
function recorder(report?: (action: string) => Promise<unknown>) {
  const did: string[] = [];
  const d: ConsolePowerDeps = {
    term: {
      write: (text) => void did.push(`shown: ${text.trim()}`),
      readLine: () => Promise.reject(new Error('nothing is read')),
      close: () => void did.push('closed'),
    },
    power: { poweroff: async () => void did.push('poweroff'), reboot: async () => void did.push('reboot') },
    ...(report ? { report: async (action) => (did.push(`reported ${action}`), report(action)) } : {}),
  };
  return { d, did };
}

describe('consolePower', () => {
  it('tells the controller first, then closes the console and acts', async () => {
    const { d, did } = recorder(async () => ({}));
    await consolePower('poweroff', d);
    expect(did).toEqual(['reported poweroff', 'shown: Powering off (recorded on the controller).', 'closed', 'poweroff']);
  });

  it('acts even when the controller cannot be told, and says so', async () => {
    const { d, did } = recorder(async () => {
      throw new Error('/agent/v1/console/power: HTTP 401: run token is unknown');
    });
    await consolePower('reboot', d);
    expect(did).toEqual(['reported reboot', 'shown: Rebooting; the controller was not told: /agent/v1/console/power: HTTP 401: run token is unknown', 'closed', 'reboot']);
  });

  it('without a credential (no orders) it says that nothing was reported', async () => {
    const { d, did } = recorder();
    await consolePower('reboot', d);
    expect(did).toEqual(['shown: Rebooting (this installer holds no credential to tell the controller with).', 'closed', 'reboot']);
  });
});
