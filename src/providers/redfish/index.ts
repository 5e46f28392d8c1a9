export { RedfishProvider, createRedfishProvider } from './redfish-provider.js';
export { RedfishClient, redfishErrorMessage, type RedfishAuthMode, type RedfishResource } from './redfish-client.js';
export { REDFISH_QUIRKS, REDFISH_VENDORS, detectRedfishVendor, redfishQuirks, type RedfishQuirks, type RedfishVendor } from './redfish-quirks.js';
