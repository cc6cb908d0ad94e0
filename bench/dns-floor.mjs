// The floor for DNS on Hangar's stack: the least a Node UDP responder can do per query, run by
// bench/peers.ts beside the sidecar and dnsmasq under the same dnsperf. It answers the one
// allowed name with a fixed A record and every other name with NXDOMAIN. No policy, no
// rate, no ledger, no events, no parsing beyond comparing the question's bytes.
//
//   node [flags] bench/dns-floor.mjs <port> <allowed name>
//
// Plain JavaScript so that nothing (tsx, a loader) runs beside it: what it costs is Node's.
import { Buffer } from "node:buffer";
import { createSocket } from "node:dgram";
import process from "node:process";

const [port, allowed] = process.argv.slice(2);
if (port === undefined || allowed === undefined) {
  process.stderr.write("usage: node bench/dns-floor.mjs <port> <allowed name>\n");
  process.exit(2);
}

// The allowed question as it appears after the 12-byte header: labels, root, type A, class IN.
const labels = allowed.split(".").flatMap((label) => [label.length, ...Buffer.from(label, "latin1")]);
const question = Buffer.from([...labels, 0, 0, 1, 0, 1]);
const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 2]);

// No lookup for the client's address: it is already a literal.
const udp = createSocket({ type: "udp4", lookup: (address, _family, callback) => callback(null, address, 4) });
udp.on("message", (msg, rinfo) => {
  if (msg.length < 12) return;
  const hit = question.compare(msg, 12) === 0;
  const out = Buffer.allocUnsafe(hit ? msg.length + answer.length : msg.length);
  msg.copy(out);
  out[2] = 0x80 | (msg[2] & 0x79); // QR, the opcode and RD kept, AA and TC clear
  out[3] = hit ? 0 : 3; // NOERROR or NXDOMAIN
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  out.writeUInt16BE(hit ? 1 : 0, 6);
  if (hit) answer.copy(out, msg.length);
  udp.send(out, rinfo.port, rinfo.address);
});
udp.bind(Number(port), "127.0.0.1");
process.once("SIGTERM", () => udp.close());
