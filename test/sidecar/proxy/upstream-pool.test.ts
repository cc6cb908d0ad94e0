import { afterEach, describe, expect, it } from "vitest";
import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, createSecureContext, rootCertificates, type TLSSocket } from "node:tls";
import { UpstreamPool } from "../../../src/sidecar/proxy/http/upstream-pool.js";
import { testPki } from "./fixtures.js";
import { ALLOWED_IP } from "./harness.js";

/**
 * Pooled upstream connections: one is handed out again only for the same resolved address,
 * port and verified TLS name. A connection verified for one name carrying a request for
 * another would be domain fronting done by the sidecar itself. An idle connection that speaks
 * unasked, or that the upstream closes, is never handed out again.
 */
const disposers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!();
});

async function listen(server: Server): Promise<{ port: number; accepted: Socket[] }> {
  const accepted: Socket[] = [];
  server.on("connection", (s: Socket) => accepted.push(s));
  server.on("secureConnection", (s: TLSSocket) => s.on("error", () => undefined));
  await new Promise<void>((resolve) => server.listen({ host: ALLOWED_IP, port: 0 }, () => resolve()));
  disposers.push(() => {
    for (const s of accepted) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as { port: number }).port, accepted };
}

function pool(caCert?: string): UpstreamPool {
  const context = caCert === undefined ? undefined : createSecureContext({ ca: [...rootCertificates, caCert] });
  const p = new UpstreamPool(context === undefined ? {} : { tlsContext: () => context });
  disposers.push(() => p.destroy());
  return p;
}

describe("UpstreamPool", () => {
  it("hands an idle connection out again for the same address and port", async () => {
    const { port, accepted } = await listen(createServer((s) => s.on("error", () => undefined)));
    const p = pool();
    const first = await p.acquire({ ip: ALLOWED_IP, port });
    p.release(first);
    const second = await p.acquire({ ip: ALLOWED_IP, port });
    expect(second.reused).toBe(true);
    expect(second.socket).toBe(first.socket);
    expect(accepted).toHaveLength(1);
  });

  it("never hands a TLS connection verified for one name out for another name at the same address", async () => {
    const pki = await testPki();
    const { port, accepted } = await listen(createTlsServer({ key: pki.key, cert: pki.cert }));
    const p = pool(pki.caCert);
    const forApi = await p.acquire({ ip: ALLOWED_IP, port, servername: "api.allowed.test" });
    p.release(forApi);
    const forOther = await p.acquire({ ip: ALLOWED_IP, port, servername: "other.allowed.test" });
    expect(forOther.reused).toBe(false);
    expect(forOther.socket).not.toBe(forApi.socket);
    expect((forOther.socket as TLSSocket).servername).toBe("other.allowed.test");
    p.release(forOther);
    // The first name still gets its own connection back.
    const again = await p.acquire({ ip: ALLOWED_IP, port, servername: "api.allowed.test" });
    expect(again.socket).toBe(forApi.socket);
    await expect.poll(() => accepted.length).toBe(2);
  });

  it("drops an idle connection that speaks unasked, or that the upstream closes", async () => {
    const { port, accepted } = await listen(createServer((s) => s.on("error", () => undefined)));
    const p = pool();
    const a = await p.acquire({ ip: ALLOWED_IP, port });
    p.release(a);
    await expect.poll(() => accepted.length).toBe(1);
    accepted[0]!.write("HTTP/1.1 200 OK\r\n\r\n");
    await expect.poll(() => a.socket.destroyed).toBe(true);
    const b = await p.acquire({ ip: ALLOWED_IP, port });
    expect(b.reused).toBe(false);
    p.release(b);
    await expect.poll(() => accepted.length).toBe(2);
    accepted[1]!.end();
    await expect.poll(() => b.socket.destroyed).toBe(true);
    expect((await p.acquire({ ip: ALLOWED_IP, port })).reused).toBe(false);
  });
});
