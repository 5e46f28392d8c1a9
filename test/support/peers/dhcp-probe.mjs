// A DHCP client for tests that must see every answer on the wire (a stand-in for a PXE ROM,
// iPXE or UEFI HTTP Boot firmware, none of which can run here outside a VM). It speaks real
// DHCP (RFC 2131) over a real interface: run it inside a network namespace with
// `nsenter --net=/run/netns/NS -- node dhcp-probe.mjs --kind bios|uefi|ipxe|http --mac MAC [--request]`.
// With --pxe ADDRESS it then asks a proxyDHCP's boot server (port 4011) for the boot file, as
// a PXE ROM does after a proxy offer. It broadcasts a DISCOVER carrying the options that client kind sends (60, 93, 94, 97, 175),
// prints every reply as one JSON line, and with --request takes the first address offered
// (REQUEST → ACK). It exits after `--replies N` replies (from any server), or after --wait
// seconds (a bound on waiting, not an expectation).
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']] : acc), []),
);
const kind = args.kind ?? 'bios';
const mac = Buffer.from((args.mac ?? '52:54:00:00:00:01').split(':').map((h) => parseInt(h, 16)));
const wantReplies = Number(args.replies ?? 1);
const waitMs = Number(args.wait ?? 20) * 1000;
const xid = randomBytes(4);

const KINDS = {
  bios: { vendor: 'PXEClient:Arch:00000:UNDI:002001', arch: 0 },
  uefi: { vendor: 'PXEClient:Arch:00007:UNDI:003016', arch: 7 },
  ipxe: { vendor: 'PXEClient:Arch:00000:UNDI:002001', arch: 0, ipxe: true },
  http: { vendor: 'HTTPClient:Arch:00016:UNDI:003001', arch: 16 },
};
const k = KINDS[kind];
if (!k) throw new Error(`unknown --kind ${kind}`);

function opt(code, value) {
  const v = Buffer.isBuffer(value) ? value : Buffer.from(value);
  return Buffer.concat([Buffer.from([code, v.length]), v]);
}

function packet(type, extra = [], ciaddr = null) {
  const head = Buffer.alloc(236);
  if (ciaddr) Buffer.from(ciaddr.split('.').map(Number)).copy(head, 12);
  head[0] = 1; // BOOTREQUEST
  head[1] = 1;
  head[2] = 6;
  xid.copy(head, 4);
  head.writeUInt16BE(0x8000, 10); // broadcast the answer: this client has no address yet
  mac.copy(head, 28);
  const arch = Buffer.alloc(2);
  arch.writeUInt16BE(k.arch);
  const options = [
    opt(53, [type]),
    opt(60, k.vendor),
    opt(93, arch),
    opt(94, [1, 2, 1]),
    opt(97, Buffer.concat([Buffer.from([0]), randomBytes(16)])),
    opt(55, [1, 3, 6, 43, 54, 60, 66, 67, 175]),
    ...(k.ipxe ? [opt(175, [0xb1, 0x01, 0x01])] : []),
    ...extra,
  ];
  return Buffer.concat([head, Buffer.from([99, 130, 83, 99]), ...options, Buffer.from([255])]);
}

/** The first boot item type of a PXE menu (option 43, sub-option 9), or of a boot item reply (71). */
function bootItem(o43) {
  for (let i = 0; i + 1 < o43.length && o43[i] !== 255; i += 2 + o43[i + 1]) {
    if ((o43[i] === 9 || o43[i] === 71) && o43[i + 1] >= 2) return o43.readUInt16BE(i + 2);
  }
  return undefined;
}

const ip = (b, o) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
const cstr = (b) => b.toString('latin1').replace(/\0.*$/s, '');
const TYPES = { 1: 'DISCOVER', 2: 'OFFER', 3: 'REQUEST', 4: 'DECLINE', 5: 'ACK', 6: 'NAK', 7: 'RELEASE', 8: 'INFORM' };

function decode(msg, from) {
  if (msg.length < 240 || msg[0] !== 2 || !msg.subarray(4, 8).equals(xid)) return null;
  const options = {};
  for (let i = 240; i < msg.length && msg[i] !== 255; ) {
    if (msg[i] === 0) {
      i++;
      continue;
    }
    const code = msg[i];
    const len = msg[i + 1];
    options[code] = msg.subarray(i + 2, i + 2 + len);
    i += 2 + len;
  }
  const text = (c) => (options[c] ? options[c].toString('latin1') : undefined);
  return {
    from,
    type: TYPES[options[53]?.[0]] ?? 'BOOTREPLY',
    yiaddr: ip(msg, 16),
    siaddr: ip(msg, 20),
    sname: cstr(msg.subarray(44, 108)),
    file: cstr(msg.subarray(108, 236)),
    serverId: options[54] ? ip(options[54], 0) : undefined,
    vendorClass: text(60),
    tftpServer: text(66),
    bootfile: text(67),
    pxeVendor: options[43] ? options[43].toString('hex') : undefined,
    bootItem: options[43] ? bootItem(options[43]) : undefined,
    router: options[3] ? ip(options[3], 0) : undefined,
  };
}

const sock = createSocket({ type: 'udp4', reuseAddr: true });
let replies = 0;
let requested = false;
const done = () => {
  sock.close();
  process.exit(0);
};
const timer = setTimeout(done, waitMs);
sock.on('message', (msg, rinfo) => {
  const r = decode(msg, rinfo.address);
  if (!r) return;
  process.stdout.write(`${JSON.stringify(r)}\n`);
  if (args.request && !requested && r.type === 'OFFER' && r.yiaddr !== '0.0.0.0') {
    requested = true;
    const bytes = (a) => Buffer.from(a.split('.').map(Number));
    sock.send(packet(3, [opt(50, bytes(r.yiaddr)), opt(54, bytes(r.serverId))]), 67, '255.255.255.255');
  }
  // --pxe ADDRESS: a PXE client asks the proxy's boot server (port 4011) for the boot file of
  // the menu's first item, from its own address.
  if (args.pxe && r.type === 'OFFER' && r.yiaddr === '0.0.0.0' && rinfo.port === 67) {
    const item = Buffer.alloc(2);
    item.writeUInt16BE(r.bootItem ?? 0);
    const o43 = Buffer.concat([Buffer.from([71, 4]), item, Buffer.from([0, 0, 255])]);
    sock.send(packet(3, [opt(43, o43)], args.pxe), 4011, r.serverId);
  }
  if (++replies >= wantReplies) {
    clearTimeout(timer);
    done();
  }
});
sock.bind(68, () => {
  sock.setBroadcast(true);
  sock.send(packet(1), 67, '255.255.255.255');
});
