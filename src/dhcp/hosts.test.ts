import { describe, expect, it } from 'vitest';
import { hostsFileContent } from './hosts.js';

describe('dnsmasq hosts file of a machine', () => {
  it('one MAC,name line per MAC, sorted; a name that is no DNS label is left out', () => {
    expect(hostsFileContent('Rack1-Node7', ['52:54:00:00:00:02', '52:54:00:00:00:01'])).toBe('52:54:00:00:00:01,rack1-node7\n52:54:00:00:00:02,rack1-node7\n');
    expect(hostsFileContent('web 1,set:evil', ['52:54:00:00:00:01'])).toBe('52:54:00:00:00:01\n');
    expect(hostsFileContent('n', [])).toBe('');
  });

  it('a machine with a boot address: one line, its MACs sharing the address', () => {
    expect(hostsFileContent('node7', ['52:54:00:00:00:02', '52:54:00:00:00:01'], '10.0.0.7')).toBe('52:54:00:00:00:01,52:54:00:00:00:02,10.0.0.7,node7\n');
    expect(hostsFileContent('web 1', ['52:54:00:00:00:01'], '10.0.0.8')).toBe('52:54:00:00:00:01,10.0.0.8\n');
    expect(hostsFileContent('n', [], '10.0.0.9')).toBe('');
  });
});
