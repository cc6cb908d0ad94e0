/**
 * Bench upstreams (a child process of bench/rig.ts): a keep-alive HTTP server, a TLS
 * server that streams a fixed payload on connect, an HTTPS server (GET /bytes/N, anything
 * else a small body) for inspected TLS, and a tiny DNS server that answers every
 * A query with the upstream address. GET /__stats answers with counters. Prints one JSON
 * line with its ports, then serves.
 */
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import dgram from "node:dgram";
import dnsPacket from "dns-packet";
import { makeTestPki } from "../test/support/tls.js";

const host = process.argv[2] ?? "127.0.0.2";
const streamBytes = Number(process.argv[3] ?? 256 * 1024 * 1024);

const pki = await makeTestPki(["api.bench.test", "inspect.bench.test"]);
const body = Buffer.alloc(64, "x");
// Connections accepted so far, at GET /__stats: shows whether a proxy reuses its upstream connections.
let httpConnections = 0;
const httpServer = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  if (req.url === "/__stats") {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ httpConnections }));
    return;
  }
  res.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
  res.end(body);
});
httpServer.on("connection", () => httpConnections++);
const chunk = Buffer.alloc(64 * 1024, 7);
const tlsServer = tls.createServer({ key: pki.key, cert: pki.cert }, (socket) => {
  let left = streamBytes;
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      left -= n;
      if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        socket.once("drain", pump);
        return;
      }
    }
    socket.end();
  };
  socket.on("error", () => socket.destroy());
  pump();
});
const httpsServer = https.createServer({ key: pki.key, cert: pki.cert, keepAliveTimeout: 60_000 }, (req, res) => {
  const big = /^\/bytes\/(\d{1,10})$/.exec(req.url ?? "");
  if (big === null) {
    res.writeHead(200, { "content-type": "text/plain", "content-length": body.length }).end(body);
    return;
  }
  let left = Number(big[1]);
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": left });
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      left -= n;
      if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        res.once("drain", pump);
        return;
      }
    }
    res.end();
  };
  pump();
});
const dns = dgram.createSocket("udp4");
dns.on("message", (msg, rinfo) => {
  const q = dnsPacket.decode(msg);
  const question = q.questions?.[0];
  const answers =
    question?.type === "A" ? [{ type: "A" as const, name: question.name, ttl: 300, class: "IN" as const, data: host }] : [];
  const reply = dnsPacket.encode({ id: q.id, type: "response", flags: dnsPacket.RECURSION_DESIRED, questions: q.questions, answers });
  dns.send(reply, rinfo.port, rinfo.address);
});

const listen = (srv: http.Server | tls.Server | https.Server, port = 0): Promise<number> =>
  new Promise((resolve) => srv.listen(port, host, () => resolve((srv.address() as { port: number }).port)));
const httpPort = await listen(httpServer);
const tlsPort = await listen(tlsServer);
const httpsPort = await listen(httpsServer);
const dnsPort = await new Promise<number>((resolve) => dns.bind(0, host, () => resolve(dns.address().port)));
process.stdout.write(JSON.stringify({ httpPort, tlsPort, httpsPort, dnsPort, caCert: pki.caCert }) + "\n");
process.on("SIGTERM", () => process.exit(0));
