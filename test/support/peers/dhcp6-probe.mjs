// A DHCPv6 client for tests that must see the answer on the wire (a stand-in for iPXE's or an
// OS's DHCPv6, which cannot run here outside a VM). It speaks real DHCPv6 (RFC 8415) over a
// real interface: run it inside a network namespace with
// `nsenter --net=/run/netns/NS -- node dhcp6-probe.mjs --if eth0 --mac MAC [--ipxe]`. It sends a SOLICIT
// from the interface's link-local address to All_DHCP_Relay_Agents_and_Servers (ff02::1:2),
// asking for an address (IA_NA), DNS servers (23) and a boot file URL (59); with --ipxe it
// says "iPXE" in the user class (option 15), as iPXE does; with --httpboot it says
// "HTTPClient:Arch:00016…" in the vendor class (option 16, enterprise 343) and client arch 16
// (option 61), as UEFI HTTP Boot over IPv6 does. It prints the first ADVERTISE as one JSON
// line ({ address, bootfileUrl, dns, vendorClass }) and exits, or exits 2 after --wait seconds
// (a bound on waiting, not an expectation). Until then it sends the SOLICIT again every
// second, as a client does (RFC 8415 retransmission, simplified): the link-local address may
// still be tentative at first.
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']] : acc), []),
);
const ifname = args.if ?? 'eth0';
const mac = Buffer.from((args.mac ?? '52:54:00:00:00:01').split(':').map((h) => parseInt(h, 16)));
const waitMs = Number(args.wait ?? 20) * 1000;
const xid = randomBytes(3);

function opt(code, value) {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(code, 0);
  head.writeUInt16BE(value.length, 2);
  return Buffer.concat([head, value]);
}
const u16 = (...n) => Buffer.concat(n.map((v) => Buffer.from([v >> 8, v & 0xff])));

const duid = Buffer.concat([u16(3, 1), mac]); // DUID-LL, Ethernet
const iana = Buffer.concat([mac.subarray(2, 6), Buffer.alloc(8)]); // IAID, T1, T2
const userClass = Buffer.concat([u16(4), Buffer.from('iPXE')]);
const httpClient = Buffer.from('HTTPClient:Arch:00016:UNDI:003001');
const vendorClass = Buffer.concat([Buffer.from([0, 0, 1, 87]), u16(httpClient.length), httpClient]);
const solicit = Buffer.concat([
  Buffer.from([1]),
  xid,
  opt(1, duid),
  opt(3, iana),
  opt(8, u16(0)),
  opt(6, u16(23, 59)),
  ...(args.ipxe === 'true' ? [opt(15, userClass)] : []),
  ...(args.httpboot === 'true' ? [opt(16, vendorClass), opt(61, u16(16))] : []),
]);

/** The options of a DHCPv6 message body, as [code, value] pairs. */
function options(buf) {
  const out = [];
  for (let i = 0; i + 4 <= buf.length; ) {
    const code = buf.readUInt16BE(i);
    const len = buf.readUInt16BE(i + 2);
    out.push([code, buf.subarray(i + 4, i + 4 + len)]);
    i += 4 + len;
  }
  return out;
}

// The URL parser writes IPv6 in its canonical (compressed) form.
const ipv6 = (b) => new URL(`http://[${Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':')}]`).hostname.slice(1, -1);

const sock = createSocket({ type: 'udp6', reuseAddr: true });
let resend;
const timer = setTimeout(() => {
  clearInterval(resend);
  sock.close();
  process.exit(2);
}, waitMs);
sock.on('message', (msg) => {
  if (msg[0] !== 2 || !msg.subarray(1, 4).equals(xid)) return; // ADVERTISE to this SOLICIT only
  const reply = { address: null, bootfileUrl: null, dns: [], vendorClass: null };
  for (const [code, value] of options(msg.subarray(4))) {
    if (code === 3) {
      for (const [c, v] of options(value.subarray(12))) if (c === 5) reply.address = ipv6(v.subarray(0, 16));
    } else if (code === 59) reply.bootfileUrl = value.toString();
    else if (code === 16 && value.length >= 6) reply.vendorClass = value.subarray(6, 6 + value.readUInt16BE(4)).toString();
    else if (code === 23) for (let i = 0; i + 16 <= value.length; i += 16) reply.dns.push(ipv6(value.subarray(i, i + 16)));
  }
  process.stdout.write(`${JSON.stringify(reply)}\n`);
  clearTimeout(timer);
  clearInterval(resend);
  sock.close();
});
sock.bind(546, () => {
  sock.setMulticastInterface(`::%${ifname}`);
  const send = () => sock.send(solicit, 547, `ff02::1:2%${ifname}`, () => undefined);
  send();
  resend = setInterval(send, 1000);
});
