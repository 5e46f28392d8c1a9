export { ProxmoxProvider, createProxmoxProvider } from './proxmox-provider.js';
export { ProxmoxClient, proxmoxFailure } from './proxmox-client.js';
export { bootOrder, bootValueFor, firstBootDevice, netMac, parsePropertyString, smbiosUuid, vmMacs } from './proxmox-config.js';
