export { LibvirtProvider, createLibvirtProvider } from './libvirt-provider.js';
export { DomainXml, type DomainSummary } from './domain-xml.js';
export { Virsh, classifyVirshFailure, libvirtAuthFile } from './virsh.js';
