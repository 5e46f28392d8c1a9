/**
 * The agent's deploy and wipe work on real block devices: choosing the root disk, writing
 * the image, growing the root, seeding cloud-init, erasing disks, and the runners that
 * sequence them and report each step. Runs inside the installer: imports only core/ and agent/.
 */
export { runDeploySteps, runTreeDeploySteps, type TreeDeployOutcome, runWipeSteps, imageSource, type DeployDeps, type DeployOutcome, type WipeDeps, type WipeOutcome, type StepRunnerDeps, type StepReportBody } from './runner.js';
export { chooseRootDisk, candidateDisks, type CandidateDisk } from './root-disk.js';
export { writeImage, type WriteImageOptions, type WriteImageResult, type WriteProgress, type ImageTransport } from './write-image.js';
export { udpReceiverSource, MulticastError, type ImageChunkSource, type UdpReceiverOptions } from './multicast-receive.js';
export { uftpReceiver, type DiskReceiver, type UftpReceiverOptions } from './uftp-receive.js';
export { growRoot, type GrowRootOptions, type GrowRootResult } from './grow-root.js';
export { writeNoCloudSeed, NOCLOUD_SEED_DIR, type NoCloudSeed, type SeedOptions, type SeedResult } from './seed.js';
export { wipeDisks, END_BYTES, type WipeMode, type WipeOptions, type WipeMethod, type DiskWipeResult } from './wipe.js';
export { parseHdparmSecurity, parseNvmeIdCtrl, type AtaSecurity, type NvmeController } from './secure-erase.js';
export { findRootFilesystem, ROOT_LABEL, type RootFilesystem } from './root-filesystem.js';
export { StepError, isStepError, type StepErrorCode } from './errors.js';
export { nodeExec, ToolError, type Exec, type ExecOptions, type ExecResult } from './exec.js';
export * from './protocol.js';
export { applyDiskLayout, assignDisks, fstabOf, mdadmConfOf, mountLayout, mountOrder, partitionPath, type AppliedLayout, type MadeDevice } from './disk-layout.js';
export { configureTarget, copyTree, firstGrubEntry, installBootLoader, layoutAndMount, type BootLoaderResult, type TreeTarget } from './tree-deploy.js';
