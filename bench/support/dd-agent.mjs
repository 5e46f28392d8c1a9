// Stands in for the agent inside the installer for one measurement: the baseline the agent's
// image write is compared with — curl piped into dd onto the VM's first virtio disk.
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const args = Object.fromEntries(readFileSync('/proc/cmdline', 'utf8').trim().split(/\s+/).map((w) => w.split('=')).filter((p) => p.length >= 2).map(([k, ...v]) => [k, v.join('=')]));
const url = args['plinth.url'];
const started = process.hrtime.bigint();
let ok = true;
let out = '';
try {
  out = execFileSync('sh', ['-c', `curl -fsS ${url}/image.raw | dd of=/dev/vda bs=4M oflag=direct iflag=fullblock 2>&1; sync`], { encoding: 'utf8' });
} catch (e) {
  ok = false;
  out = String(e.stdout ?? '') + String(e.stderr ?? '');
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
await fetch(`${url}/result`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ok, seconds, out }) });
execFileSync('sh', ['-c', 'echo o > /proc/sysrq-trigger']);
