// A demo upstream of ours: a tiny HTTP server that answers every request with
// "hello from <NAME>", counts it, and logs its Host header and path on stdout.
// GET /__count reports the count and the latest requests, and is not counted itself,
// so a demo or a test can prove that nothing from a sandbox ever arrived.
import http from "node:http";
import process from "node:process";

const name = process.env.NAME ?? "upstream";
const port = Number(process.env.PORT ?? 80);
const KEEP = 100;
let count = 0;
const recent = [];

// Header values come from whoever connects: keep the log one line per request.
const printable = (value) => String(value).replace(/[\p{Cc}\p{Cf}]/gu, "?").slice(0, 200);

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/__count") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ name, count, recent }));
    return;
  }
  count += 1;
  const entry = { at: new Date().toISOString(), from: req.socket.remoteAddress ?? null, method: req.method, host: req.headers.host ?? null, path: req.url };
  recent.push(entry);
  if (recent.length > KEEP) recent.shift();
  process.stdout.write(`${entry.at} #${count} ${printable(entry.method)} host=${printable(entry.host ?? "-")} path=${printable(entry.path)} from=${entry.from}\n`);
  res.writeHead(200, { "content-type": "text/plain" });
  res.end(`hello from ${name}\n`);
});

server.listen(port, "0.0.0.0", () => process.stdout.write(`${name} listening on ${port}\n`));
// Keep-alive clients would hold server.close() open; a demo server just goes.
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
