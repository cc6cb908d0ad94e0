import { Duplex } from "node:stream";
import type { Socket } from "node:net";
import type { Mode, PolicyInput } from "../../../src/core/policy/policy-schema.js";
import type { ConnectionBudget } from "../../../src/sidecar/proxy/connection-budget.js";
import { ExplicitProxy } from "../../../src/sidecar/proxy/explicit-proxy.js";
import { TransparentListener } from "../../../src/sidecar/proxy/transparent-listener.js";
import type { TlsInspection } from "../../../src/sidecar/proxy/tls/tls-terminator.js";
import { StaticResolver, testContext } from "../../support/sidecar-context.js";
import { makeTestPki, type TestPki } from "../../support/tls.js";
import { startHttpUpstream, startTcpUpstream, startTlsUpstream, type Upstream } from "../../support/upstreams.js";
import { ALLOWED_IP, EVIL_IP, SIDECAR_IP, sharedPort } from "./harness.js";

/**
 * One scenario: an "allowed" upstream on 127.0.0.2:P, an undeclared one on 127.0.0.3:P, a
 * sidecar context whose resolver maps api.allowed.test and evil.test to them, and either
 * the transparent listener on 127.0.0.1:P or the explicit proxy on a free port.
 */
export type UpstreamKind = "tls" | "http" | "tcp";

export interface ScenarioOptions {
  readonly kind: UpstreamKind;
  /** The egress section, given the shared port P. Default: api.allowed.test on P. */
  readonly egress?: (port: number) => PolicyInput["egress"];
  readonly mode?: Mode;
  /** Default ['127.0.0.0/8'] so loopback upstreams count as vouched-for answers. */
  readonly trusted?: string[];
  readonly table?: Record<string, string[]>;
  /** The resolver holds its table's answers as fresh (peek), as the sidecar's ledger does once a name was looked up. */
  readonly held?: boolean;
  readonly peekTimeoutMs?: number;
  readonly maxHeadBytes?: number;
  readonly greeting?: string;
  /** The sandbox CA and upstream trust, for rules with `inspect: true`. */
  readonly inspection?: TlsInspection;
  /** The sidecar-wide connection budget (cap, memory check). */
  readonly budget?: ConnectionBudget;
  readonly idleTimeoutMs?: number;
  readonly headersTimeoutMs?: number;
  readonly keepAliveTimeoutMs?: number;
}

let pkiPromise: Promise<TestPki> | undefined;
export function testPki(): Promise<TestPki> {
  pkiPromise ??= makeTestPki(["api.allowed.test", "evil.test", "db.allowed.test", "other.allowed.test"]);
  return pkiPromise;
}

async function startUpstream(kind: UpstreamKind, host: string, port: number, label: string, greeting?: string): Promise<Upstream & { requests?: unknown }> {
  if (kind === "tls") return startTlsUpstream({ host, port, label, pki: await testPki() });
  if (kind === "http") return startHttpUpstream({ host, port, label });
  return startTcpUpstream({ host, port, label, ...(greeting !== undefined ? { greeting } : {}) });
}

export async function scenario(options: ScenarioOptions) {
  const port = await sharedPort();
  const allowed = await startUpstream(options.kind, ALLOWED_IP, port, "allowed", options.greeting);
  const evil = await startUpstream(options.kind, EVIL_IP, port, "evil", options.greeting);
  const resolver = new StaticResolver(
    options.table ?? { "api.allowed.test": [ALLOWED_IP], "db.allowed.test": [ALLOWED_IP], "evil.test": [EVIL_IP] },
    options.held === true,
  );
  const ctx = testContext({
    policy: options.egress?.(port) ?? { allow: [{ host: "api.allowed.test", ports: [port] }] },
    trusted: options.trusted ?? ["127.0.0.0/8"],
    resolver,
    ...(options.mode !== undefined ? { mode: options.mode } : {}),
  });
  const pki = await testPki();
  return { port, allowed, evil, resolver, ctx, sink: ctx.sink, pki };
}

export type Scenario = Awaited<ReturnType<typeof scenario>>;

export async function withTransparent(options: ScenarioOptions) {
  const s = await scenario(options);
  const listener = new TransparentListener({
    ctx: s.ctx,
    host: SIDECAR_IP,
    listenPort: s.port,
    declaredPort: s.port,
    peekTimeoutMs: options.peekTimeoutMs ?? 300,
    ...(options.maxHeadBytes !== undefined ? { maxHeadBytes: options.maxHeadBytes } : {}),
    ...(options.inspection !== undefined ? { inspection: options.inspection } : {}),
    ...(options.budget !== undefined ? { budget: options.budget } : {}),
    ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
  });
  await listener.listen();
  const dispose = async (): Promise<void> => {
    await listener.destroy();
    await s.allowed.close();
    await s.evil.close();
  };
  return { ...s, listener, dispose };
}

export async function withExplicit(options: ScenarioOptions) {
  const s = await scenario(options);
  const proxy = new ExplicitProxy({
    ctx: s.ctx,
    host: SIDECAR_IP,
    port: 0,
    peekTimeoutMs: options.peekTimeoutMs ?? 300,
    ...(options.inspection !== undefined ? { inspection: options.inspection } : {}),
    ...(options.budget !== undefined ? { budget: options.budget } : {}),
    ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
    ...(options.headersTimeoutMs !== undefined ? { headersTimeoutMs: options.headersTimeoutMs } : {}),
    ...(options.keepAliveTimeoutMs !== undefined ? { keepAliveTimeoutMs: options.keepAliveTimeoutMs } : {}),
  });
  const { port: proxyPort } = await proxy.listen();
  const dispose = async (): Promise<void> => {
    await proxy.destroy();
    await s.allowed.close();
    await s.evil.close();
  };
  return { ...s, proxy, proxyPort, proxyUrl: `http://${SIDECAR_IP}:${proxyPort}`, dispose };
}

/**
 * A socket wrapper that rewrites the client's first write (its ClientHello flight) and
 * sends it one byte per TCP segment, with a pause between bytes, so the listener really
 * sees it split. Later writes pass straight through.
 */
export class TrickleFirstFlight extends Duplex {
  private first = true;

  constructor(
    private readonly inner: Socket,
    private readonly rewrite: (flight: Buffer) => Buffer = (b) => b,
  ) {
    super();
    inner.setNoDelay(true);
    inner.on("data", (d: Buffer) => {
      if (!this.push(d)) inner.pause();
    });
    inner.on("end", () => this.push(null));
    inner.on("error", (err) => this.destroy(err));
    inner.on("close", () => this.destroy());
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (!this.first) return void this.inner.write(chunk, cb);
    this.first = false;
    const bytes = this.rewrite(chunk);
    void (async () => {
      for (let i = 0; i < bytes.length; i++) {
        this.inner.write(bytes.subarray(i, i + 1));
        await new Promise((r) => setTimeout(r, 1));
      }
      cb();
    })();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.inner.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.inner.destroy();
    cb(err);
  }
}
