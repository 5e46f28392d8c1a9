import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The end-to-end files in the order the two lanes take them (docs/testing.md, "Two lanes"):
 * each lane starts the next file as soon as its last one ends, and a file waits for its VM
 * slots before it starts anything. A two-slot file that finds one slot free takes it and waits
 * for the other, so a two-slot file after one-slot ones leaves a slot idle while it waits: the
 * two-slot files come first, one after the other (the other lane waits holding nothing), with
 * `deploy` last of them because after its inspection it keeps one slot for most of its time,
 * which the one-slot files, longest first, then share with it. The files with no VM run while
 * the first two-slot file holds both slots. A file not named here runs after these, in
 * vitest's own order.
 */
export const E2E_ORDER = [
  // both slots
  'scripts-health',
  // no VM, beside it
  'installer-extras',
  'serve-process',
  // both slots
  'multicast-vms',
  'netboot-inspection',
  'deploy',
  // one slot, longest first
  'providers-vm',
  'real-network',
  'ansible-flow',
  'image-boot',
  'native-installer',
  'console-install',
  'ipv6-network',
  'installer-boot',
];

const rank = (file: string): number => {
  const m = /\/test\/e2e\/([^/]+)\.test\.ts$/.exec(file);
  const i = m ? E2E_ORDER.indexOf(m[1]!) : -1;
  return i < 0 ? E2E_ORDER.length : i;
};

/** vitest's order (failed first, then longest by its cache), with the e2e files in the order above. */
export class LaneSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    return sorted.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f.moduleId) - rank(b.f.moduleId) || a.i - b.i).map(({ f }) => f);
  }
}
