import { describe, expect, it } from 'vitest';
import { uftpdArgs, uftpServerList } from './uftp-receive.js';

describe('uftpd', () => {
  const p = {
    session: 's1',
    transport: 'uftp' as const,
    portbase: 9440,
    startTimeoutSeconds: 90,
    receiveTimeoutSeconds: 30,
    uftp: { address: '232.4.4.1', serverId: '0x1234ABCD', serverAddress: '10.0.0.1', fingerprint: Array(20).fill('AB').join(':'), clientId: '0x00000002' },
  };

  it("accepts only the controller's encrypted session, as the client ID it was handed, into the directory given", () => {
    const args = uftpdArgs(p, { destination: '/tmp/x/in', servers: '/tmp/x/servers' }, 'eth1');
    const flag = (f: string) => args[args.indexOf(f) + 1];
    expect(args).toContain('-E');
    expect(args).toContain('-d');
    expect(flag('-S')).toBe('/tmp/x/servers');
    expect(flag('-U')).toBe('0x00000002');
    expect(flag('-M')).toBe('232.4.4.1');
    expect(flag('-p')).toBe('9440');
    expect(flag('-D')).toBe('/tmp/x/in');
    expect(flag('-I')).toBe('eth1');
    expect(uftpdArgs(p, { destination: '/d', servers: '/s' }, null)).not.toContain('-I');
    expect(uftpServerList(p)).toBe(`0x1234ABCD|10.0.0.1|${p.uftp.fingerprint}\n`);
  });
});
