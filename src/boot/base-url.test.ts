import { describe, expect, it } from 'vitest';
import { controllerBaseUrl } from './base-url.js';

describe('controllerBaseUrl', () => {
  const conn = (localAddress: string | undefined, localPort: number | undefined, protocol = 'http') => ({ protocol, localAddress, localPort });

  it('is the configured public URL when there is one, whatever the connection', () => {
    expect(controllerBaseUrl('https://plinth.example.net/', conn('10.0.0.5', 7708), '0.0.0.0:7708')).toBe('https://plinth.example.net');
  });

  it("is the connection's local address otherwise: IPv4, IPv4-mapped IPv6, IPv6 in brackets", () => {
    expect(controllerBaseUrl('', conn('10.20.0.5', 7708), '0.0.0.0:7708')).toBe('http://10.20.0.5:7708');
    expect(controllerBaseUrl('', conn('::ffff:10.20.0.5', 7708), '[::]:7708')).toBe('http://10.20.0.5:7708');
    expect(controllerBaseUrl('', conn('fd00::5', 7708, 'https'), '[::]:7708')).toBe('https://[fd00::5]:7708');
    expect(controllerBaseUrl('', conn('fe80::5%eth0', 7708), '[::]:7708')).toBe('http://[fe80::5]:7708');
  });

  it('falls back to the listen address when the request has no socket address', () => {
    expect(controllerBaseUrl('', conn(undefined, undefined), '0.0.0.0:7708')).toBe('http://127.0.0.1:7708');
    expect(controllerBaseUrl('', conn(undefined, undefined), '10.1.2.3:80')).toBe('http://10.1.2.3:80');
    expect(controllerBaseUrl('', conn(undefined, undefined), '[fd00::5]:80')).toBe('http://[fd00::5]:80');
    expect(controllerBaseUrl('', conn(undefined, undefined), '[::]:7708')).toBe('http://127.0.0.1:7708');
  });
});
