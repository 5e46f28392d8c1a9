import { describe, expect, it } from 'vitest';
import { StepError } from './errors.js';
import { parseDeployParams, parseWipeParams } from './protocol.js';
import { imageSource } from './runner.js';

const sha = 'AB'.repeat(32);
const valid = {
  image: { url: '/agent/v1/image', sha256: sha, sizeBytes: 1024, format: 'raw' },
  seed: { userData: '#cloud-config\n', metaData: 'instance-id: i-1\n', networkConfig: 'version: 2\n' },
};

function problem(raw: unknown, parse: (raw: unknown) => unknown = parseDeployParams): string {
  try {
    parse(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(StepError);
    expect((e as StepError).code).toBe('params');
    return (e as StepError).message;
  }
  throw new Error('expected a failure');
}

describe('deploy and wipe parameters', () => {
  it('accepts the contract and normalises the checksum to lower case', () => {
    expect(parseDeployParams({ ...valid, rootDeviceHints: { serial: 'S1', sizeGiB: 480 } })).toEqual({
      image: { ...valid.image, sha256: sha.toLowerCase() },
      seed: valid.seed,
      rootDeviceHints: { serial: 'S1', sizeGiB: 480 },
    });
    expect(parseDeployParams({ ...valid, rootDeviceHints: null }).rootDeviceHints).toBeUndefined();
    expect(parseDeployParams({ ...valid, kernelArgs: 'intel_iommu=on nomodeset' }).kernelArgs).toBe('intel_iommu=on nomodeset');
    expect(problem({ ...valid, kernelArgs: 'quiet; reboot' })).toMatch(/^params.kernelArgs holds a quote/);
    expect(parseWipeParams({ mode: 'full' })).toEqual({ mode: 'full' });
  });

  it('names the first field that is wrong', () => {
    expect(problem({ ...valid, image: { ...valid.image, sha256: 'abc' } })).toBe('params.image.sha256 is not 64 hex digits');
    expect(problem({ ...valid, image: { ...valid.image, format: 'qcow2' } })).toBe('params.image.format is "qcow2"; this agent writes raw images only');
    expect(problem({ ...valid, image: { ...valid.image, sizeBytes: -1 } })).toBe('params.image.sizeBytes is not a whole number of 0 or more');
    expect(problem({ ...valid, seed: { ...valid.seed, networkConfig: 7 } })).toBe('params.seed.networkConfig is not a string');
    expect(problem({ ...valid, rootDeviceHints: { size: 10 } })).toBe(
      'params.rootDeviceHints.size is not a root device hint (known: name, serial, wwn, model, vendor, sizeBytes, sizeGiB, minSizeBytes)',
    );
    expect(problem({ image: valid.image })).toBe('params.seed is not an object');
    expect(problem({ mode: 'secure' }, parseWipeParams)).toBe('params.mode is "secure"; expected "quick" or "full"');
  });
});

describe("the image's chunk index", () => {
  const index = { url: '/agent/v1/images/web/chunks', sha256: 'c'.repeat(64) };
  it('takes the index and differential with it', () => {
    expect(parseDeployParams({ ...valid, image: { ...valid.image, index, differential: true } }).image).toEqual({ ...valid.image, sha256: sha.toLowerCase(), index, differential: true });
  });
  it('names what is wrong: the index, or differential without one', () => {
    expect(problem({ ...valid, image: { ...valid.image, index: { ...index, sha256: 'nope' } } })).toMatch(/^params\.image\.index\.sha256 /);
    expect(problem({ ...valid, image: { ...valid.image, index: { ...index, extra: 1 } } })).toMatch(/^params\.image\.index/);
    expect(problem({ ...valid, image: { ...valid.image, differential: true } })).toBe('params.image.differential needs params.image.index (the chunks to compare the disk with)');
    expect(problem({ ...valid, image: { ...valid.image, index, differential: 'yes' } })).toBe('params.image.differential is not true or false');
  });
});

describe('root device hints', () => {
  it('holds them to the rules the API and profiles check them with: no blank text, no size of 0', () => {
    expect(problem({ ...valid, rootDeviceHints: { serial: '  ' } })).toMatch(/^params\.rootDeviceHints\.serial is "  ": /);
    expect(problem({ ...valid, rootDeviceHints: { sizeGiB: 0 } })).toMatch(/^params\.rootDeviceHints\.sizeGiB is 0: /);
    expect(problem({ ...valid, rootDeviceHints: { model: 'a\nb' } })).toMatch(/^params\.rootDeviceHints\.model /);
    expect(parseDeployParams({ ...valid, rootDeviceHints: { name: '/dev/sda', minSizeBytes: 1 } }).rootDeviceHints).toEqual({ name: '/dev/sda', minSizeBytes: 1 });
  });
});

describe('imageSource', () => {
  it('resolves relative URLs against the controller and sends the token only there', () => {
    expect(imageSource('/agent/v1/image', 'http://10.0.0.1:8080', 'tok')).toEqual({ url: 'http://10.0.0.1:8080/agent/v1/image', token: 'tok' });
    expect(imageSource('images/a.raw', 'http://ctl/plinth', 'tok')).toEqual({ url: 'http://ctl/plinth/images/a.raw', token: 'tok' });
    expect(imageSource('http://10.0.0.1:8080/x.raw', 'http://10.0.0.1:8080/', 'tok').token).toBe('tok');
    expect(imageSource('http://mirror.example/x.raw', 'http://10.0.0.1:8080', 'tok')).toEqual({ url: 'http://mirror.example/x.raw', token: null });
    expect(() => imageSource('ftp://mirror/x.raw', 'http://ctl', 'tok')).toThrow("params.image.url 'ftp://mirror/x.raw' is not an http(s) URL");
  });
});

describe('a multicast session', () => {
  const udpcast = { session: 's1', portbase: 9000, startTimeoutSeconds: 90, receiveTimeoutSeconds: 30 };
  const uftp = { address: '232.4.4.1', serverId: '0x0A000001', serverAddress: '10.0.0.1', fingerprint: Array(20).fill('0F').join(':'), clientId: '0x00000001' };
  it('takes udpcast (the transport when none is named) and uftp with its server and client', () => {
    expect(parseDeployParams({ ...valid, multicast: udpcast }).multicast).toEqual(udpcast);
    expect(parseDeployParams({ ...valid, multicast: { ...udpcast, transport: 'uftp', uftp } }).multicast).toEqual({ ...udpcast, transport: 'uftp', uftp });
  });
  it('refuses uftp without its parameters, its parameters without uftp, and a fingerprint that is not one', () => {
    expect(problem({ ...valid, multicast: { ...udpcast, transport: 'uftp' } })).toBe('params.multicast.uftp comes with transport uftp, and only with it');
    expect(problem({ ...valid, multicast: { ...udpcast, uftp } })).toBe('params.multicast.uftp comes with transport uftp, and only with it');
    expect(problem({ ...valid, multicast: { ...udpcast, transport: 'uftp', uftp: { ...uftp, fingerprint: 'AB:CD' } } })).toMatch(/^params\.multicast\.uftp\.fingerprint /);
    expect(problem({ ...valid, multicast: { ...udpcast, transport: 'tftp' } })).toMatch(/^params\.multicast\.transport /);
  });
});
