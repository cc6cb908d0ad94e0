import { afterEach, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type Socket } from "node:net";
import type { HttpUpstream } from "../../support/upstreams.js";
import { withExplicit } from "./fixtures.js";
import { ALLOWED_IP, connectTcp, EVIL_IP, proxyRequest, readAll } from "./harness.js";

/**
 * The explicit proxy's plain-HTTP forwarding (the sidecar's own HTTP/1.1 framing on both
 * sides): request framing travels intact, hop-by-hop headers stop here in both directions,
 * responses are delimited as the upstream framed them, upstream connections are kept alive
 * and reused, and failures on either side end the exchange with an event rather than a hang.
 */
const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
});

async function explicit(options: Parameters<typeof withExplicit>[0] = { kind: "http" }) {
  const e = await withExplicit(options);
  disposers.push(e.dispose);
  return e;
}

/** Replaces the scenario's allowed upstream with `handler`, on the same address and port. */
async function replaceAllowed(e: Awaited<ReturnType<typeof explicit>>, handler: Parameters<typeof createServer>[1]): Promise<Server> {
  await e.allowed.close();
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen({ host: ALLOWED_IP, port: e.port }, () => resolve()));
  disposers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return server;
}

/** Replaces the allowed upstream with a raw TCP server that answers each request with `answer`. */
async function replaceAllowedRaw(e: Awaited<ReturnType<typeof explicit>>, answer: (socket: Socket, request: string) => void): Promise<{ connections: () => number; requests: string[] }> {
  await e.allowed.close();
  let connections = 0;
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    connections++;
    sockets.add(socket);
    let buf = "";
    socket.on("error", () => undefined);
    socket.on("data", (c: Buffer) => {
      buf += c.toString("latin1");
      for (let end = buf.indexOf("\r\n\r\n"); end !== -1; end = buf.indexOf("\r\n\r\n")) {
        const head = buf.slice(0, end + 4);
        buf = buf.slice(end + 4);
        requests.push(head);
        answer(socket, head);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: ALLOWED_IP, port: e.port }, () => resolve()));
  disposers.push(() => {
    // The sidecar keeps its upstream connections alive: they are ours to close.
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { connections: () => connections, requests };
}

const get = (e: { port: number }, path: string, extra = ""): string => `GET http://api.allowed.test:${e.port}${path} HTTP/1.1\r\nHost: api.allowed.test:${e.port}\r\n${extra}\r\n`;

describe("ExplicitProxy: responses framed as the upstream framed them", () => {
  it("relays a response delimited by the upstream's close, and closes the client after it", async () => {
    const e = await explicit();
    await replaceAllowedRaw(e, (socket) => socket.end("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"));
    const s = await connectTcp(e.proxyPort);
    const all = readAll(s);
    s.write(get(e, "/close"));
    const text = (await all).toString("latin1");
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text).toMatch(/\r\nConnection: close\r\n/i);
    expect(text.endsWith("\r\n\r\nuntil the end")).toBe(true);
    expect((await e.sink.waitFor((x) => x.phase === "close")).bytesDown).toBe("until the end".length);
  });

  it("answers HEAD without a body although the upstream names a length, and serves the next request", async () => {
    const e = await explicit();
    await replaceAllowedRaw(e, (socket, head) => socket.write(head.startsWith("HEAD") ? "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" : "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"));
    const s = await connectTcp(e.proxyPort);
    const all = readAll(s);
    s.write(get(e, "/a").replace("GET", "HEAD") + get(e, "/b", "Connection: close\r\n"));
    const text = (await all).toString("latin1");
    expect(text.match(/HTTP\/1\.1 200 /g)).toHaveLength(2);
    expect(text.endsWith("\r\n\r\nhello")).toBe(true);
  });

  it("decodes a chunked response for an HTTP/1.0 client and delimits it by closing", async () => {
    const e = await explicit();
    await replaceAllowedRaw(e, (socket) => socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
    const s = await connectTcp(e.proxyPort);
    const all = readAll(s);
    s.write(`GET http://api.allowed.test:${e.port}/old HTTP/1.0\r\nHost: api.allowed.test:${e.port}\r\n\r\n`);
    const text = (await all).toString("latin1");
    expect(text).not.toMatch(/transfer-encoding/i);
    expect(text.endsWith("\r\n\r\nhello world")).toBe(true);
  });

  it("refuses a response with two different lengths: 502, and the close event says why", async () => {
    const e = await explicit();
    await replaceAllowedRaw(e, (socket) => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nhello"));
    const res = await proxyRequest(e.proxyPort, `http://api.allowed.test:${e.port}/ambiguous`);
    expect(res.status).toBe(502);
    expect((await e.sink.waitFor((x) => x.phase === "close")).error).toMatch(/framing is ambiguous/);
  });

  it("tells a client that expects 100-continue to send its body once the head is decided", async () => {
    const e = await explicit();
    const s = await connectTcp(e.proxyPort);
    const all = readAll(s);
    s.write(`POST http://api.allowed.test:${e.port}/upload HTTP/1.1\r\nHost: api.allowed.test:${e.port}\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`);
    await new Promise<void>((resolve) => s.once("data", (c: Buffer) => (expect(c.toString("latin1")).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\n/), resolve())));
    s.write("hello");
    const text = (await all).toString("latin1");
    expect(text).toContain('"bodyBytes":5');
  });
});

describe("ExplicitProxy: a request cut short", () => {
  it("answers 400 with an event when the client ends its side inside the body it announced; nothing goes upstream", async () => {
    const e = await explicit();
    const s = await connectTcp(e.proxyPort, { halfOpen: true });
    const all = readAll(s);
    s.end(`POST http://api.allowed.test:${e.port}/upload HTTP/1.1\r\nHost: api.allowed.test:${e.port}\r\nContent-Length: 10\r\n\r\nabc`);
    expect((await all).toString("latin1")).toMatch(/^HTTP\/1\.1 400 /);
    expect(await e.sink.waitFor((x) => x.phase === "decide" && x.verdict === "block")).toMatchObject({ reasons: ["malformed-request"] });
    expect((e.allowed as HttpUpstream).requests).toHaveLength(0);
  });
});

describe("ExplicitProxy: a name the resolver already holds", () => {
  it("is routed without a lookup, and its held address still gets the rebinding check", async () => {
    // Held at a loopback address no trusted range vouches for: refused, and nothing is dialled.
    const bad = await explicit({ kind: "http", held: true, trusted: [], table: { "api.allowed.test": [EVIL_IP] } });
    const refused = await proxyRequest(bad.proxyPort, `http://api.allowed.test:${bad.port}/`);
    expect(refused.status).toBe(403);
    const e = await bad.sink.waitFor((x) => x.phase === "decide");
    expect(e).toMatchObject({ verdict: "block", name: "api.allowed.test" });
    expect(e.reasons).toContain("resolution-loopback");
    expect(bad.resolver.peeked).toEqual(["api.allowed.test"]);
    expect(bad.resolver.asked).toEqual([]);
    expect((bad.evil as HttpUpstream).requests).toHaveLength(0);
    expect((bad.allowed as HttpUpstream).requests).toHaveLength(0);

    // Held at a vouched-for address: forwarded, still without asking the resolver.
    const good = await explicit({ kind: "http", held: true });
    const ok = await proxyRequest(good.proxyPort, `http://api.allowed.test:${good.port}/`);
    expect(ok.status).toBe(200);
    expect(good.resolver.asked).toEqual([]);
    expect((good.allowed as HttpUpstream).requests).toHaveLength(1);
  });
});

describe("ExplicitProxy: how long a client may take", () => {
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  it("answers 408 to a head still unfinished after headersTimeout, and forwards none of it", async () => {
    const e = await explicit({ kind: "http", headersTimeoutMs: 300 });
    const s = await connectTcp(e.proxyPort);
    const all = readAll(s);
    const started = Date.now();
    s.write(`GET http://api.allowed.test:${e.port}/slow HTTP/1.1\r\nHost: api.allowed.test`);
    expect((await all).toString("latin1")).toMatch(/^HTTP\/1\.1 408 /);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect((e.allowed as HttpUpstream).requests).toHaveLength(0);
  });

  it("gives each later head on a kept-alive connection its own headersTimeout, from its first byte", async () => {
    const e = await explicit({ kind: "http", headersTimeoutMs: 300, keepAliveTimeoutMs: 30_000 });
    const s = await connectTcp(e.proxyPort);
    const all = readAll(s);
    s.write(get(e, "/1"));
    await sleep(500);
    s.write(`GET http://api.allowed.test:${e.port}/2 HTTP/1.1\r\n`);
    const partAt = Date.now();
    const text = (await all).toString("latin1");
    // The head's own timeout, not the idle one (30 s) the connection waited under before it.
    expect(Date.now() - partAt).toBeLessThan(10_000);
    expect(text.match(/HTTP\/1\.1 200 /g)).toHaveLength(1);
    expect(text).toMatch(/HTTP\/1\.1 408 /);
    expect((e.allowed as HttpUpstream).requests).toHaveLength(1);
  });

  it("closes a kept-alive connection idle for keepAliveTimeout, and keeps one in use open past it", async () => {
    const e = await explicit({ kind: "http", headersTimeoutMs: 5000, keepAliveTimeoutMs: 300 });
    // In use: a request every 100 ms for 900 ms, three times the idle timeout, all on one connection.
    const busy = await connectTcp(e.proxyPort);
    const busyAll = readAll(busy);
    for (let i = 0; i < 9; i++) {
      busy.write(get(e, `/busy${i}`));
      await sleep(100);
    }
    busy.end(get(e, "/last", "Connection: close\r\n"));
    expect((await busyAll).toString("latin1").match(/HTTP\/1\.1 200 /g)).toHaveLength(10);
    // Idle after one request: closed without a word once the timeout passes.
    const idle = await connectTcp(e.proxyPort);
    const idleAll = readAll(idle);
    idle.write(get(e, "/once"));
    const started = Date.now();
    const text = (await idleAll).toString("latin1");
    expect(text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });
});

describe("ExplicitProxy: upstream connections are kept alive", () => {
  it("carries a client's keep-alive requests over one upstream connection", async () => {
    const e = await explicit();
    const up = await replaceAllowedRaw(e, (socket) => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    const s = await connectTcp(e.proxyPort);
    const all = readAll(s);
    s.write(get(e, "/1") + get(e, "/2") + get(e, "/3", "Connection: close\r\n"));
    expect((await all).toString("latin1").match(/HTTP\/1\.1 200 /g)).toHaveLength(3);
    expect(up.requests).toHaveLength(3);
    expect(up.connections()).toBe(1);
  });

  it("sends a request again, once, on a new connection when the kept-alive one was closed by the upstream", async () => {
    const e = await explicit();
    let served = 0;
    // Answers, then closes the connection at once without saying so: the next request on it meets a closed socket.
    const up = await replaceAllowedRaw(e, (socket) => {
      served++;
      socket.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    const first = await proxyRequest(e.proxyPort, `http://api.allowed.test:${e.port}/1`);
    expect(first.status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    const second = await proxyRequest(e.proxyPort, `http://api.allowed.test:${e.port}/2`);
    expect(second.status).toBe(200);
    expect(served).toBe(2);
    expect(up.connections()).toBe(2);
  });
});

describe("ExplicitProxy: HTTP request and response framing", () => {
  it("forwards a chunked request body and counts it", async () => {
    const e = await explicit();
    const s = await connectTcp(e.proxyPort);
    const response = readAll(s);
    s.write(
      `POST http://api.allowed.test:${e.port}/upload HTTP/1.1\r\nHost: api.allowed.test:${e.port}\r\nConnection: close\r\n` +
        `Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`,
    );
    const text = (await response).toString();
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).toContain('"bodyBytes":11');
    expect((await e.sink.waitFor((x) => x.phase === "close")).bytesUp).toBe(11);
  });

  it("sends a Content-Length: 0 request upstream without waiting for a body", async () => {
    const e = await explicit();
    const res = await proxyRequest(e.proxyPort, `http://api.allowed.test:${e.port}/empty`, { method: "POST", headers: { "content-length": "0" } });
    expect(JSON.parse(res.body.toString())).toMatchObject({ method: "POST", bodyBytes: 0 });
  });

  it("keeps repeated end-to-end request headers and the client's Host from the URL", async () => {
    const e = await explicit();
    const s = await connectTcp(e.proxyPort);
    const response = readAll(s);
    s.write(
      `GET http://api.allowed.test:${e.port}/multi HTTP/1.1\r\nHost: evil.test\r\nX-Multi: a\r\nX-Multi: b\r\nConnection: close\r\n\r\n`,
    );
    expect((await response).toString()).toMatch(/^HTTP\/1\.1 200/);
    const seen = (e.allowed as HttpUpstream).requests[0]!;
    expect(seen.host).toBe(`api.allowed.test:${e.port}`);
    expect(seen.headers["x-multi"]).toBe("a, b");
  });

  it("drops hop-by-hop response headers (and those Connection names) and re-frames a chunked body", async () => {
    const e = await explicit();
    await replaceAllowed(e, (_req, res) => {
      res.writeHead(200, { Connection: "X-Hop-Only", "X-Hop-Only": "secret", "Keep-Alive": "timeout=5", "Proxy-Authenticate": "Basic", "X-End": "2" });
      res.write("part one, ");
      res.end("part two");
    });
    const res = await proxyRequest(e.proxyPort, `http://api.allowed.test:${e.port}/`);
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe("part one, part two");
    expect(res.headers["x-end"]).toBe("2");
    for (const h of ["x-hop-only", "keep-alive", "proxy-authenticate"]) expect(res.headers[h]).toBeUndefined();
    expect((await e.sink.waitFor((x) => x.phase === "close")).bytesDown).toBe(18);
  });

  it("answers 502 when the upstream refuses the connection, and records the error", async () => {
    const e = await explicit();
    await e.allowed.close();
    const res = await proxyRequest(e.proxyPort, `http://api.allowed.test:${e.port}/`);
    expect(res.status).toBe(502);
    const close = await e.sink.waitFor((x) => x.phase === "close");
    expect(close.error).toMatch(/ECONNREFUSED/);
  });

  it("stops the upstream request when the client goes away mid-response", async () => {
    const e = await explicit();
    let upstreamClosed!: () => void;
    const closedUpstream = new Promise<void>((resolve) => (upstreamClosed = resolve));
    await replaceAllowed(e, (_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once("drain", pump);
      };
      res.once("close", () => upstreamClosed());
      pump();
    });
    const s = await connectTcp(e.proxyPort);
    s.write(`GET http://api.allowed.test:${e.port}/endless HTTP/1.1\r\nHost: api.allowed.test:${e.port}\r\n\r\n`);
    await new Promise((resolve) => s.once("data", resolve));
    s.destroy();
    await closedUpstream;
    const close = await e.sink.waitFor((x) => x.phase === "close");
    expect(close.bytesDown).toBeGreaterThan(0);
  });
});
