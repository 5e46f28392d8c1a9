import type { MachineView } from '../api/client.js';
import { terminalText } from './output.js';

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(bytes >= 2 ** 34 ? 0 : 1)} GiB`;

export const machineRow = (m: MachineView) => ({
  name: m.name,
  state: m.state + (m.targetState ? `→${m.targetState}` : ''),
  power: m.power.state,
  owner: m.owner,
  flags: [m.maintenance ? 'maintenance' : '', m.protected ? 'protected' : '', m.identityConflicts.length ? 'conflict' : ''].filter(Boolean).join(',') || null,
  serial: m.identity.serial,
  macs: m.identity.macs[0] ? m.identity.macs[0] + (m.identity.macs.length > 1 ? ` +${m.identity.macs.length - 1}` : '') : null,
});

export const MACHINE_COLUMNS = ['name', 'state', 'power', 'owner', 'flags', 'serial', 'macs'];

type FactsView = {
  cpu?: { model?: string | null; sockets?: number; cores?: number; threads?: number; architecture?: string };
  memory?: { totalBytes?: number };
  disks?: { name: string; sizeBytes: number }[];
  nics?: { name: string; mac: string; ipv4?: string[]; link?: boolean }[];
  firmware?: { bootMode?: string };
};

/** A person-readable page about one machine. */
/** `bootMethodOfAppliance`: the linked appliance's boot method, which applies when the machine sets none. */
export function describeMachine(m: MachineView, bootMethodOfAppliance?: string): string {
  const id = m.identity;
  const lines: [string, string][] = [
    ['Name', m.name],
    ['ID', m.id],
    ['State', `${m.state}${m.targetState ? ` → ${m.targetState}` : ''}${m.stateDeadline ? ` (deadline ${m.stateDeadline})` : ''}`],
    ['Power', `${m.power.state}${m.power.readAt ? ` (read ${m.power.readAt}${m.power.source ? ` via ${m.power.source}` : ''})` : ''}`],
    ['Maintenance', m.maintenance ? `yes${m.maintenanceReason ? `: ${m.maintenanceReason}` : ''}` : 'no'],
    ['Protected', m.protected ? 'yes' : 'no'],
    ['Owner', m.owner ? `${m.owner} (since ${m.allocatedAt})` : '-'],
    ['System UUID', id.systemUuid ?? '-'],
    ['Serial', `${id.serial ?? '-'}${id.manufacturer ? ` (${id.manufacturer}${id.productName ? ` ${id.productName}` : ''})` : ''}`],
    ['Asset tag', id.assetTag ?? '-'],
    ['MACs', id.macs.join(', ') || '-'],
    ['Tags', Object.entries(m.tags).map(([k, v]) => `${k}=${v}`).join(', ') || '-'],
  ];
  if (m.bootAddress) lines.push(['Boot address', `${m.bootAddress} (fixed)`]);
  if (m.provider.applianceId || m.provider.ref) lines.push(['Provider', `${m.provider.applianceId ?? '-'} ${m.provider.ref ?? ''}`.trim()]);
  lines.push(['Boot method', m.bootMethod ?? (bootMethodOfAppliance ? `${bootMethodOfAppliance} (its appliance's)` : "its appliance's (pxe without one)")]);
  const f = m.facts as FactsView | null;
  if (f) {
    if (f.cpu) lines.push(['CPU', `${f.cpu.model ?? f.cpu.architecture ?? '?'} — ${f.cpu.sockets ?? '?'} socket(s), ${f.cpu.cores ?? '?'} cores, ${f.cpu.threads ?? '?'} threads`]);
    if (f.memory?.totalBytes) lines.push(['Memory', gib(f.memory.totalBytes)]);
    if (f.disks) lines.push(['Disks', f.disks.map((d) => `${d.name} ${gib(d.sizeBytes)}`).join(', ') || '-']);
    if (f.nics) lines.push(['NICs', f.nics.map((n) => `${n.name} ${n.mac}${n.ipv4?.length ? ` ${n.ipv4.join(' ')}` : ''}`).join(', ') || '-']);
    if (f.firmware?.bootMode) lines.push(['Firmware', f.firmware.bootMode]);
  } else {
    lines.push(['Facts', 'not inspected yet']);
  }
  if (m.deployment?.image || m.deployment?.address) {
    lines.push(['Deployed', `${m.deployment.image ?? '-'}${m.deployment.deployedAt ? ` (${m.deployment.deployedAt})` : ''}`]);
    if (m.deployment.role) lines.push(['Tree', `${m.deployment.role}-${m.deployment.version ?? '?'}  (role ${m.deployment.role}, version ${m.deployment.version ?? '?'})`]);
    if (m.deployment.address) lines.push(['Address', `${m.deployment.address}  (ssh plinth@${m.deployment.address})`]);
  }
  if (m.lastError) lines.push(['Last error', `[${m.lastError.code}] at ${m.lastError.stage}: ${m.lastError.message} (${m.lastError.at})`]);
  if (m.identityConflicts.length) {
    lines.push(['Conflicts', m.identityConflicts.map((c) => `${c.field} ${c.reported} (${c.kind}${c.recorded ? `, recorded ${c.recorded}` : ''}, machine ${c.machineId})`).join('; ')]);
  }
  if (m.currentRunId) lines.push(['Current run', m.currentRunId]);
  lines.push(['Allowed', m.allowedActions.join(', ') || '-']);
  const w = Math.max(...lines.map(([k]) => k.length)) + 1;
  // Each value escaped on its own: a line break in a serial or a disk name cannot forge a line of the page.
  return lines.map(([k, v]) => `${(k + ':').padEnd(w)} ${terminalText(v)}`).join('\n');
}
