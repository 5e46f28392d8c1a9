/**
 * Hardware inspection for the agent: parsers for the tools the installer carries, the
 * assembler that turns their output into `Facts` (structured, plus eDeploy 4-tuples), and
 * the collector that runs them. Runs inside the installer: imports only core/ and agent/.
 */
export { collectFacts, type CollectOptions, type InspectionProblem } from './collect.js';
export { assembleFacts, lshwProductName, lshwSpeed, type InspectionInputs, type NicInputs } from './assemble.js';
export { nodeCommandRunner, type CommandResult, type CommandRunner, type NodeCommandRunnerOptions } from './command-runner.js';
export { nodeFactsFs, type FactsFs } from './facts-fs.js';
export { parseDmidecode, parseDmiRecords, parseDmiSize, installedMemoryBytes, type DmiInfo } from './dmidecode.js';
export { parseLsblk, isInstallableDisk, LSBLK_ARGS, type BlockDevice } from './lsblk.js';
export { parseIpAddr, IP_ADDR_ARGS, type NetInterface, type InterfaceAddress } from './ip-addr.js';
export { parseLscpu, countCpuList, countCpuMask, type LscpuInfo } from './lscpu.js';
export { parseEthtool, parseEthtoolDriver, type EthtoolLink, type EthtoolDriver } from './ethtool.js';
export { parseIpmiLanPrint, channelHasAccessSettings, type IpmiLan } from './ipmitool.js';
export { parseLspci, LSPCI_ARGS, type PciDevice } from './lspci.js';
export { parseMemTotalBytes } from './meminfo.js';
export { parseCpuinfo, type CpuinfoSummary } from './cpuinfo.js';
export { readSysfsDmi } from './sysfs-dmi.js';
export { detectBootMode } from './boot-mode.js';
