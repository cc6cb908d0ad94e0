import { afterEach, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import type { Socket } from "node:net";
import { withExplicit, withTransparent } from "./fixtures.js";
import { connectTcp, openConnect } from "./harness.js";

/**
 * The splice reads upstream bytes into one reused buffer per connection, so a chunk must
 * have left before the next read lands in the same memory. These tests push more than the
 * loopback socket buffers hold through an echo upstream while the client stops reading for
 * a while: every write backs up, and a reuse bug would corrupt or reorder the echo.
 */
const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
});

const TOTAL = 24 * 1024 * 1024;

/** Position-dependent bytes, so a chunk replayed, dropped or overwritten changes the digest. First byte 0: no TLS, no HTTP. */
function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >>> 13)) & 0xff;
  b[0] = 0;
  return b;
}

const digest = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

/** Sends `data` and ends; reads the echo, stalling after the first chunk so every buffer fills. */
async function echoThrough(socket: Socket, data: Buffer, stallMs = 300): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  let stalled = false;
  const done = new Promise<Buffer>((resolve, reject) => {
    socket.on("data", (c: Buffer) => {
      chunks.push(c);
      size += c.length;
      if (!stalled) {
        stalled = true;
        socket.pause();
        setTimeout(() => socket.resume(), stallMs);
      }
    });
    socket.once("end", () => resolve(Buffer.concat(chunks, size)));
    socket.once("error", reject);
  });
  // openConnect hands the tunnel over paused, and a 'data' listener does not undo a pause().
  socket.resume();
  // Written in slices, as an application would, rather than one 24 MiB write.
  for (let off = 0; off < data.length; off += 256 * 1024) {
    if (!socket.write(data.subarray(off, off + 256 * 1024))) await new Promise((r) => socket.once("drain", r));
  }
  socket.end();
  return done;
}

describe("splice: byte integrity under backpressure", () => {
  it("transparent: a 24 MiB echo through a stalled client arrives whole and in order, with exact byte counts", async () => {
    const t = await withTransparent({ kind: "tcp", egress: (port) => ({ allow: [{ host: "db.allowed.test", ports: [port] }] }) });
    disposers.push(t.dispose);
    const data = pattern(TOTAL);
    const echo = await echoThrough(await connectTcp(t.port, { halfOpen: true }), data);
    expect(echo.length).toBe(TOTAL);
    expect(digest(echo)).toBe(digest(data));
    const close = await t.sink.waitFor((e) => e.phase === "close");
    expect(close).toMatchObject({ bytesUp: TOTAL, bytesDown: TOTAL, verdict: "allow" });
    expect(close.error).toBeUndefined();
  }, 30_000);

  it("explicit CONNECT: the same through a tunnel", async () => {
    const e = await withExplicit({ kind: "tcp", egress: (port) => ({ allow: [{ host: "db.allowed.test", ports: [port] }] }) });
    disposers.push(e.dispose);
    const tunnel = await openConnect(e.proxyPort, `db.allowed.test:${e.port}`);
    expect(tunnel.status).toBe(200);
    const data = pattern(TOTAL);
    const echo = await echoThrough(tunnel.socket, data);
    expect(echo.length).toBe(TOTAL);
    expect(digest(echo)).toBe(digest(data));
    const close = await e.sink.waitFor((x) => x.phase === "close");
    expect(close).toMatchObject({ bytesUp: TOTAL, bytesDown: TOTAL, protocol: "connect" });
  }, 30_000);
});
