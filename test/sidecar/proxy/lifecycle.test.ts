import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { isHangarError } from "../../../src/core/errors.js";
import { withExplicit, withTransparent } from "./fixtures.js";
import { captureClientHello, closed, connectTcp, openConnect, openFds, rawRequest, readAll, tlsClient, until } from "./harness.js";

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
});

const dbPolicy = (port: number) => ({ allow: [{ host: "db.allowed.test", ports: [port] }] });

/** Sends `text` on a live spliced connection and waits for the echo. */
async function echo(socket: Socket, text: string): Promise<string> {
  return new Promise((resolve) => {
    socket.once("data", (d: Buffer) => resolve(d.toString("latin1")));
    socket.write(text);
  });
}

describe("TransparentListener lifecycle", () => {
  it("close() stops accepting, drains a live spliced connection, and is idempotent; listen() after close throws HANGAR_CLOSED", async () => {
    const t = await withTransparent({ kind: "tcp", egress: dbPolicy });
    disposers.push(t.dispose);
    const live = await connectTcp(t.port, { halfOpen: true });
    expect(await echo(live, "\x00one")).toBe("\x00one");

    let drained = false;
    const closing = t.listener.close().then(() => (drained = true));
    expect(t.listener.close()).toBe(t.listener.close());
    await expect(connectTcp(t.port)).rejects.toThrow(/ECONNREFUSED/);
    // The live connection still works while draining.
    expect(await echo(live, "two")).toBe("two");
    await new Promise((r) => setTimeout(r, 50));
    expect(drained).toBe(false);

    const rest = readAll(live);
    live.end();
    await rest;
    await closing;
    expect(drained).toBe(true);
    expect(await t.sink.waitFor((e) => e.phase === "close")).toMatchObject({ bytesUp: 7, bytesDown: 7 });
    await expect(t.listener.listen()).rejects.toSatisfy((err: unknown) => isHangarError(err, "HANGAR_CLOSED"));
  });

  it("destroy() kills a live spliced connection at once", async () => {
    const t = await withTransparent({ kind: "tcp", egress: dbPolicy });
    disposers.push(t.dispose);
    const live = await connectTcp(t.port);
    live.on("error", () => undefined);
    expect(await echo(live, "\x00ping")).toBe("\x00ping");
    await t.listener.destroy();
    await closed(live);
    expect(t.listener.connections).toBe(0);
    const close = await t.sink.waitFor((e) => e.phase === "close");
    expect(close.bytesUp).toBe(5);
  });

  it("leaks no file descriptors after 3000 aborted connections", async () => {
    const t = await withTransparent({ kind: "tls", peekTimeoutMs: 200 });
    disposers.push(t.dispose);
    const hello = await captureClientHello({ servername: "api.allowed.test" });
    // Warm up lazily opened descriptors (TLS, DNS, timers) before the baseline.
    const warm = await tlsClient({ port: t.port, servername: "api.allowed.test", ca: t.pki.caCert });
    await rawRequest(warm, "api.allowed.test");
    await until(() => t.listener.connections === 0);
    const before = await openFds();

    const abort = async (i: number): Promise<void> => {
      if (i % 10 === 0) {
        // A completed handshake through a live splice, then a reset (odd) or a FIN (even).
        const raw = await connectTcp(t.port);
        raw.on("error", () => undefined);
        const tls = await tlsClient({ socket: raw, servername: "api.allowed.test", ca: t.pki.caCert });
        tls.on("error", () => undefined);
        if (i % 20 === 0) tls.destroy();
        else raw.resetAndDestroy();
        return;
      }
      const s = await connectTcp(t.port);
      s.on("error", () => undefined);
      if (i % 4 === 1) s.write(hello.subarray(0, 30)); // half a ClientHello
      if (i % 4 === 2) s.write(hello); // a whole, allowed ClientHello: aborted mid-splice or mid-dial
      if (i % 4 === 3) s.write("GET / HTTP/1.1\r\nHost: evil.test\r\n"); // half an HTTP head
      if (i % 8 === 7) await new Promise((r) => setTimeout(r, 2));
      s.resetAndDestroy();
    };
    for (let batch = 0; batch < 30; batch++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => abort(batch * 100 + i)));
    }
    await until(() => t.listener.connections === 0, 10_000);
    await new Promise((r) => setTimeout(r, 100));
    const after = await openFds();
    expect(after - before).toBeLessThanOrEqual(5);

    // Still serving.
    const tls = await tlsClient({ port: t.port, servername: "api.allowed.test", ca: t.pki.caCert });
    expect(await rawRequest(tls, "api.allowed.test")).toContain('"upstream":"allowed"');
  });
});

describe("ExplicitProxy lifecycle", () => {
  it("close() drains a live tunnel; destroy() kills it; listen() after close throws", async () => {
    const e = await withExplicit({ kind: "tcp", egress: dbPolicy });
    disposers.push(e.dispose);
    const { socket, status } = await openConnect(e.proxyPort, `db.allowed.test:${e.port}`);
    expect(status).toBe(200);
    socket.resume();
    expect(await echo(socket, "\x00hi")).toBe("\x00hi");

    let drained = false;
    const closing = e.proxy.close().then(() => (drained = true));
    await expect(connectTcp(e.proxyPort)).rejects.toThrow(/ECONNREFUSED/);
    expect(await echo(socket, "still")).toBe("still");
    await new Promise((r) => setTimeout(r, 50));
    expect(drained).toBe(false);
    await e.proxy.destroy();
    await closed(socket);
    await closing;
    expect(drained).toBe(true);
    await expect(e.proxy.listen()).rejects.toSatisfy((err: unknown) => isHangarError(err, "HANGAR_CLOSED"));
  });

  it("leaks no file descriptors after 1500 aborted CONNECTs and requests", async () => {
    const e = await withExplicit({ kind: "tls", peekTimeoutMs: 200 });
    disposers.push(e.dispose);
    const warm = await openConnect(e.proxyPort, `api.allowed.test:${e.port}`);
    warm.socket.destroy();
    await until(() => e.proxy.tunnelCount === 0);
    const before = await openFds();
    const abort = async (i: number): Promise<void> => {
      const s = await connectTcp(e.proxyPort);
      s.on("error", () => undefined);
      if (i % 3 === 0) s.write(`CONNECT api.allowed.test:${e.port} HTTP/1.1\r\n\r\n`);
      if (i % 3 === 1) s.write(`GET http://evil.test:${e.port}/ HTTP/1.1\r\nHost: evil.test\r\n\r\n`);
      if (i % 3 === 2) s.write(`CONNECT api.allowed.test:${e.port} HTTP/1.1\r\n`);
      if (i % 6 === 5) await new Promise((r) => setTimeout(r, 2));
      s.resetAndDestroy();
    };
    for (let batch = 0; batch < 15; batch++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => abort(batch * 100 + i)));
    }
    await until(() => e.proxy.tunnelCount === 0, 10_000);
    await new Promise((r) => setTimeout(r, 300));
    expect((await openFds()) - before).toBeLessThanOrEqual(5);
  });
});
