import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Server } from "node:net";
import { connect as tlsConnect, rootCertificates } from "node:tls";
import type { Socket } from "node:net";
import { createSandboxCa, LeafMinter, type CaMaterial } from "../../../src/sidecar/proxy/tls/sandbox-ca.js";
import { testPki, withExplicit, withTransparent, type Scenario } from "./fixtures.js";
import { ALLOWED_IP, connectTcp, SIDECAR_IP } from "./harness.js";

/**
 * Relayed responses read upstream bytes into regions of one buffer per upstream connection
 * (region-reader.ts), and a body chunk is written to the client as a view into it, held until
 * written. These tests send a response larger than the socket buffers hold while the client
 * stops reading for a while, so writes queue behind each other: a region reused too early
 * would corrupt or reorder the body. Plain HTTP (by length and chunked) through the explicit
 * proxy, and TLS the sidecar terminates and re-makes (inspect: true).
 */
const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
});

const TOTAL = 24 * 1024 * 1024;
const DATA = pattern(TOTAL);

function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >>> 13)) & 0xff;
  return b;
}

const digest = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

/** Serves DATA: with a length, or chunked in uneven writes. */
function serve(chunked: boolean) {
  return (_req: IncomingMessage, res: ServerResponse): void => {
    if (!chunked) {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": TOTAL });
      res.end(DATA);
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream" });
    let off = 0;
    const pump = (): void => {
      while (off < TOTAL) {
        const next = Math.min(TOTAL, off + 7919 + (off % 65_537));
        const ok = res.write(DATA.subarray(off, next));
        off = next;
        if (!ok) return void res.once("drain", pump);
      }
      res.end();
    };
    pump();
  };
}

/** Replaces the scenario's allowed upstream with `server`, on the same address and port. */
async function replaceAllowed(s: Scenario, server: Server): Promise<void> {
  await s.allowed.close();
  const sockets = new Set<Socket>();
  server.on("connection", (c: Socket) => sockets.add(c));
  await new Promise<void>((resolve) => server.listen({ host: ALLOWED_IP, port: s.port }, () => resolve()));
  disposers.push(() => {
    for (const c of sockets) c.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
}

/** Sends one request and reads the whole answer, stalling after the first chunk so every buffer fills. */
async function fetchStalled(socket: Socket, request: string): Promise<{ head: string; body: Buffer }> {
  const chunks: Buffer[] = [];
  let stalled = false;
  const all = await new Promise<Buffer>((resolve, reject) => {
    socket.on("data", (c: Buffer) => {
      chunks.push(c);
      if (!stalled) {
        stalled = true;
        socket.pause();
        setTimeout(() => socket.resume(), 300);
      }
    });
    socket.once("end", () => resolve(Buffer.concat(chunks)));
    socket.once("error", reject);
    socket.write(request);
  });
  const end = all.indexOf("\r\n\r\n");
  return { head: all.subarray(0, end).toString("latin1"), body: all.subarray(end + 4) };
}

/** A chunked body, decoded (the test's own reading, independent of the sidecar's). */
function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = b.indexOf("\r\n", at);
    const size = parseInt(b.subarray(at, eol).toString("latin1"), 16);
    if (size === 0) return Buffer.concat(out);
    out.push(b.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

let ca: CaMaterial;
beforeAll(async () => {
  ca = await createSandboxCa({ name: "test", now: Date.now() });
});

describe("relayed responses: byte integrity under backpressure", () => {
  for (const chunked of [false, true]) {
    it(`explicit plain HTTP, ${chunked ? "chunked" : "by length"}: a 24 MiB body through a stalled client arrives whole and in order`, async () => {
      const e = await withExplicit({ kind: "http" });
      disposers.push(e.dispose);
      await replaceAllowed(e, createServer(serve(chunked)));
      const s = await connectTcp(e.proxyPort);
      const { head, body } = await fetchStalled(s, `GET http://api.allowed.test:${e.port}/big HTTP/1.1\r\nHost: api.allowed.test:${e.port}\r\nConnection: close\r\n\r\n`);
      expect(head).toMatch(/^HTTP\/1\.1 200 /);
      const got = chunked ? dechunk(body) : body;
      expect(got.length).toBe(TOTAL);
      expect(digest(got)).toBe(digest(DATA));
      expect(await e.sink.waitFor((x) => x.phase === "close")).toMatchObject({ bytesDown: TOTAL });
    }, 60_000);
  }

  it("inspected TLS: a 24 MiB body, re-encrypted for a stalled client, arrives whole and in order", async () => {
    const pki = await testPki();
    const t = await withTransparent({
      kind: "tls",
      egress: (port) => ({ allow: [{ host: "api.allowed.test", ports: [port], inspect: true }] }),
      inspection: { minter: new LeafMinter(ca), upstreamCa: [...rootCertificates, pki.caCert] },
    });
    disposers.push(t.dispose);
    await replaceAllowed(t, createHttpsServer({ key: pki.key, cert: pki.cert }, serve(false)));
    const s = tlsConnect({ host: SIDECAR_IP, port: t.port, servername: "api.allowed.test", ca: ca.certPem });
    await new Promise<void>((resolve, reject) => s.once("secureConnect", resolve).once("error", reject));
    const { head, body } = await fetchStalled(s as unknown as Socket, "GET /big HTTP/1.1\r\nHost: api.allowed.test\r\nConnection: close\r\n\r\n");
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    expect(body.length).toBe(TOTAL);
    expect(digest(body)).toBe(digest(DATA));
    expect(await t.sink.waitFor((x) => x.phase === "close")).toMatchObject({ bytesDown: TOTAL });
  }, 60_000);
});
