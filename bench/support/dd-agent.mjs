// Stands in for the agent inside the installer for one measurement: the baselines the agent's
// image write is compared with, onto the VM's first virtio disk, one after the other in one boot:
//  - `dd`: curl piped into dd (no checksum);
//  - `ddSha256`: the same with every byte also hashed by sha256sum through a FIFO (the agent checks
//    every chunk it writes against the image's sha256 chunk index: this is the like-for-like one).
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const args = Object.fromEntries(readFileSync('/proc/cmdline', 'utf8').trim().split(/\s+/).map((w) => w.split('=')).filter((p) => p.length >= 2).map(([k, ...v]) => [k, v.join('=')]));
const url = args['plinth.url'];
const dd = 'dd of=/dev/vda bs=4M oflag=direct iflag=fullblock 2>&1; sync';
const commands = {
  dd: `curl -fsS ${url}/image.raw | ${dd}`,
  ddSha256: `rm -f /tmp/h; mkfifo /tmp/h; sha256sum /tmp/h > /tmp/sum & hash=$!; curl -fsS ${url}/image.raw | tee /tmp/h | ${dd}; wait $hash; cat /tmp/sum`,
};
let ok = true;
let out = '';
const seconds = {};
for (const [name, command] of Object.entries(commands)) {
  const started = process.hrtime.bigint();
  try {
    out += execFileSync('sh', ['-c', command], { encoding: 'utf8' });
  } catch (e) {
    ok = false;
    out += String(e.stdout ?? '') + String(e.stderr ?? '');
    break;
  }
  seconds[name] = Number(process.hrtime.bigint() - started) / 1e9;
}
await fetch(`${url}/result`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ok, seconds, out }) });
execFileSync('sh', ['-c', 'echo o > /proc/sysrq-trigger']);
