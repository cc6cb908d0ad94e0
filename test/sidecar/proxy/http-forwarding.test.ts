import { afterEach, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import type { HttpUpstream } from "../../support/upstreams.js";
import { withExplicit } from "./fixtures.js";
import { ALLOWED_IP, connectTcp, proxyRequest, readAll } from "./harness.js";

/**
 * The explicit proxy's plain-HTTP forwarding (node:http on both sides): request framing
 * travels intact, hop-by-hop headers stop here in both directions, and failures on either
 * side end the exchange with an event rather than a hang.
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
