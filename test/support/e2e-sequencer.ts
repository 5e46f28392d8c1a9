import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The end-to-end files, longest first (docs/testing.md's table): they run in two lanes, each
 * starting the next file as soon as its last one ends, so the longest should not start last.
 * A file not named here runs after these, in vitest's own order.
 */
export const E2E_LONGEST_FIRST = [
  'deploy',
  'ansible-flow',
  'image-boot',
  'multicast-vms',
  'real-network',
  'scripts-health',
  'providers-vm',
  'native-installer',
  'installer-extras',
  'netboot-inspection',
  'console-install',
  'ipv6-network',
  'installer-boot',
  'serve-process',
];

const rank = (file: string): number => {
  const m = /\/test\/e2e\/([^/]+)\.test\.ts$/.exec(file);
  const i = m ? E2E_LONGEST_FIRST.indexOf(m[1]!) : -1;
  return i < 0 ? E2E_LONGEST_FIRST.length : i;
};

/** vitest's order (failed first, then longest by its cache), with the e2e files in the order above. */
export class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    return sorted.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f.moduleId) - rank(b.f.moduleId) || a.i - b.i).map(({ f }) => f);
  }
}
