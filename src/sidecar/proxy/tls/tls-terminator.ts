import type { Socket } from "node:net";
import { Duplex } from "node:stream";
import { TLSSocket, rootCertificates, type SecureContext } from "node:tls";
import type { LeafMinter } from "./sandbox-ca.js";

/**
 * Where a rule says `inspect: true`, the sidecar is the TLS server the sandboxed client talks
 * to (a leaf for the SNI, signed by the sandbox CA), and a TLS client of the real upstream,
 * with full verification. What is in between is plain HTTP that the forwarder decides request
 * by request.
 */
export interface TlsInspection {
  readonly minter: LeafMinter;
  /** What the sidecar trusts when it re-originates TLS: the system roots plus runtime.upstreamCaFile. */
  readonly upstreamCa: readonly string[];
}

/** The trust store for re-originated TLS: never empty, never "accept anything". */
export function upstreamTrust(extraPem: string | undefined): string[] {
  return extraPem === undefined ? [...rootCertificates] : [...rootCertificates, extraPem];
}

export type Termination =
  | { readonly ok: true; readonly tls: TLSSocket }
  | { readonly ok: false; readonly clientRejected: boolean; readonly error: string };

/**
 * The client's bytes that were already read (the peeked ClientHello) replayed in front of the
 * rest. net's own TLS wrap reads the kernel socket directly and would never see them, so the
 * TLS socket is built on this stream instead.
 */
class ReplayStream extends Duplex {
  constructor(
    private readonly inner: Socket,
    head: Buffer,
  ) {
    super({ allowHalfOpen: true });
    if (head.length > 0) this.push(head);
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
    this.inner.write(chunk, cb);
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

// A client that refuses our certificate says so with an alert (unknown CA, bad certificate...).
const CLIENT_ALERT = /alert (unknown ca|bad certificate|certificate unknown|unsupported certificate|access denied|decrypt error)|alert number (42|43|46|48|49|51)/i;

/** Completes the TLS handshake as the server for `name`; `head` is what was peeked. */
export async function terminateTls(socket: Socket, head: Buffer, context: SecureContext, timeoutMs: number): Promise<Termination> {
  const tls = new TLSSocket(new ReplayStream(socket, head) as unknown as Socket, { isServer: true, secureContext: context, ALPNProtocols: ["http/1.1"] });
  return new Promise((resolve) => {
    let settled = false;
    const settle = (t: Termination): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      tls.off("secure", onSecure);
      socket.off("end", hungUp);
      resolve(t);
    };
    const onSecure = (): void => settle({ ok: true, tls });
    const timer = setTimeout(() => {
      settle({ ok: false, clientRejected: false, error: `no TLS handshake within ${timeoutMs} ms` });
      tls.destroy();
    }, timeoutMs);
    tls.once("secure", onSecure);
    tls.once("error", (err) => {
      settle({ ok: false, clientRejected: CLIENT_ALERT.test(err.message), error: err.message });
      tls.destroy();
    });
    // Its ClientHello was answered with our certificate: a client that hangs up now, without an
    // alert (Node's TLS 1.3 client does just that), did not accept it.
    const hungUp = (): void => {
      if (settled) return;
      settle({ ok: false, clientRejected: true, error: "the client closed the handshake after seeing the sandbox certificate (it pins, or does not trust the sandbox CA)" });
      tls.destroy();
    };
    tls.once("close", hungUp);
    // Listener sockets allow half-open connections: a client's FIN alone does not close them.
    socket.once("end", hungUp);
    // A later error (after the handshake) belongs to the HTTP server that adopts the socket.
    tls.on("error", () => undefined);
    socket.resume();
  });
}
