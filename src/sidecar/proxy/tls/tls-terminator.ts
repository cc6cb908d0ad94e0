import type { Socket } from "node:net";
import { TLSSocket, rootCertificates, type SecureContext, type TLSSocketOptions } from "node:tls";
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
 * How much a response may queue towards the client before the upstream is paused. At the
 * default 16 KiB every TLS record (16 KiB) filled it, so the upstream was paused and resumed
 * once per record: bench/inspect.ts, bulk, 0.38x direct and 6 ms of sidecar CPU per MB at
 * 16 KiB; 0.65x and 3 ms at 256 KiB. Bounded: at most this much per inspected connection.
 */
const WRITE_HIGH_WATER_MARK = 256 * 1024;

// A client that refuses our certificate says so with an alert (unknown CA, bad certificate...).
const CLIENT_ALERT = /alert (unknown ca|bad certificate|certificate unknown|unsupported certificate|access denied|decrypt error)|alert number (42|43|46|48|49|51)/i;

/** Completes the TLS handshake as the server for `name`; `head` is what was peeked. */
export async function terminateTls(socket: Socket, head: Buffer, context: SecureContext, timeoutMs: number): Promise<Termination> {
  // The peeked ClientHello goes back in front of the socket's buffer: a TLSSocket built on a
  // net.Socket feeds what that buffer holds to OpenSSL, then reads the kernel socket natively.
  // (A JS Duplex in between carried every byte of the session through JS streams twice, with
  // a fresh buffer per encrypted write: about 6.4 ms of sidecar CPU per MB against 5.0 here.)
  if (head.length > 0) socket.unshift(head);
  // Node hands highWaterMark on to the net.Socket underneath; its types leave it out.
  const options: TLSSocketOptions & { readonly highWaterMark: number } = { isServer: true, secureContext: context, ALPNProtocols: ["http/1.1"], highWaterMark: WRITE_HIGH_WATER_MARK };
  const tls = new TLSSocket(socket, options);
  return new Promise((resolve) => {
    let settled = false;
    const settle = (t: Termination): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      tls.off("secure", onSecure);
      tls.off("end", hungUp);
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
    // Listener sockets allow half-open connections (the TLS socket inherits that): a client's
    // FIN alone does not close them.
    tls.once("end", hungUp);
    // A later error (after the handshake) belongs to the HTTP server that adopts the socket.
    tls.on("error", () => undefined);
  });
}
