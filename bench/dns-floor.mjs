// The floor for DNS on Hangar's stack: the least a Node UDP responder can do per query, run by
// bench/peers.ts beside the sidecar and dnsmasq under the same dnsperf. It answers the one
// allowed name with a fixed A record and every other name with NXDOMAIN. No policy, no
// rate, no ledger, no events, no parsing beyond comparing the question's bytes.
//
//   node [flags] bench/dns-floor.mjs <port> <allowed name> [<udp-batch.node>]
//
// With the third argument, the socket is the sidecar's batched one (images/sidecar/native/
// udp-batch.c, as the image compiles it) instead of dgram's: datagrams read and replies sent in
// batches (recvmmsg / sendmmsg), which Node itself does not offer.
//
// Plain JavaScript so that nothing (tsx, a loader) runs beside it: what it costs is Node's.
import { Buffer } from "node:buffer";
import { createSocket } from "node:dgram";
import { createRequire } from "node:module";
import process from "node:process";
import { setImmediate } from "node:timers";

const [port, allowed, batchAddon] = process.argv.slice(2);
if (port === undefined || allowed === undefined) {
  process.stderr.write("usage: node bench/dns-floor.mjs <port> <allowed name> [<udp-batch.node>]\n");
  process.exit(2);
}

// The allowed question as it appears after the 12-byte header: labels, root, type A, class IN.
const labels = allowed.split(".").flatMap((label) => [label.length, ...Buffer.from(label, "latin1")]);
const question = Buffer.from([...labels, 0, 0, 1, 0, 1]);
const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 2]);

/** The reply's length, for a query of at least 12 bytes. */
const replyLength = (msg) => (question.compare(msg, 12) === 0 ? msg.length + answer.length : msg.length);

/** Writes the reply to `msg` into `out` at `at`; returns its length. */
function reply(msg, out, at) {
  const hit = question.compare(msg, 12) === 0;
  msg.copy(out, at);
  out[at + 2] = 0x80 | (msg[2] & 0x79); // QR, the opcode and RD kept, AA and TC clear
  out[at + 3] = hit ? 0 : 3; // NOERROR or NXDOMAIN
  out.writeUInt16BE(hit ? 1 : 0, at + 6);
  out.writeUInt32BE(0, at + 8);
  if (!hit) return msg.length;
  answer.copy(out, at + msg.length);
  return msg.length + answer.length;
}

if (batchAddon === undefined) {
  // No lookup for the client's address: it is already a literal.
  const udp = createSocket({ type: "udp4", lookup: (address, _family, callback) => callback(null, address, 4) });
  // Replies leave in one burst per turn of the loop, as the sidecar's do (src/sidecar/dns/dns-server.ts).
  const replies = [];
  const sendReplies = () => {
    for (let i = 0; i < replies.length; i += 3) udp.send(replies[i], replies[i + 1], replies[i + 2]);
    replies.length = 0;
  };
  udp.on("message", (msg, rinfo) => {
    if (msg.length < 12) return;
    const out = Buffer.allocUnsafe(replyLength(msg));
    reply(msg, out, 0);
    replies.push(out, rinfo.port, rinfo.address);
    if (replies.length === 3) setImmediate(sendReplies);
  });
  udp.bind(Number(port), "127.0.0.1");
  process.once("SIGTERM", () => udp.close());
} else {
  // The sidecar's own batch size; 1 KiB slots are plenty for the queries dnsperf sends.
  const SLOTS = 64;
  const BYTES = 1024;
  const batch = createRequire(import.meta.url)(batchAddon);
  const input = new ArrayBuffer(SLOTS * BYTES);
  const output = new ArrayBuffer(SLOTS * BYTES);
  const meta = new ArrayBuffer(SLOTS * 16);
  const inBytes = Buffer.from(input);
  const outBytes = Buffer.from(output);
  const m = new Uint32Array(meta);
  const [handle] = batch.open("127.0.0.1", Number(port), SLOTS, BYTES, BYTES, input, output, meta, (count) => {
    for (let i = 0; i < count; i++) {
      const at = i * BYTES;
      const msg = inBytes.subarray(at, at + Math.min(m[4 * i], BYTES));
      m[4 * i + 3] = msg.length < 12 || replyLength(msg) > BYTES ? 0 : reply(msg, outBytes, at);
    }
  });
  process.once("SIGTERM", () => batch.close(handle));
}
