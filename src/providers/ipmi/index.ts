export { IpmiProvider, createIpmiProvider, IPMI_SYSTEM_REF } from './ipmi-provider.js';
export { IpmiTool, ipmiTarget, parseIpmiAddress, classifyIpmiFailure, type IpmiTarget } from './ipmitool.js';
