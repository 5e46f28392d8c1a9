export { VsphereProvider, createVsphereProvider, reorderBoot, firstBoot, type BootEntry, type VmDevices } from './vsphere-provider.js';
export { VsphereRestClient } from './vsphere-rest.js';
export { VsphereSoapClient, type MoRef, type ObjectContent } from './vsphere-soap.js';
