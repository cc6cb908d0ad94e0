import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type { Verdict } from "../../../core/decision.js";
import type { SidecarContext } from "../../sidecar-context.js";
import { emitEgress, type AttemptFacts } from "../egress-event.js";
import { endConnection } from "../http-reply.js";
import { terminateTls, type TlsInspection } from "./tls-terminator.js";

/**
 * A connection to an inspected destination, either path: the sidecar completes the client's
 * TLS handshake with a leaf for `name`, then hands the decrypted stream to `adopt` (the HTTP
 * server that decides each request). A client that refuses the sandbox CA (certificate
 * pinning) fails closed, and the event says so; so does a sidecar that was given no CA.
 */
export async function inspectConnection(options: {
  readonly ctx: SidecarContext;
  readonly inspection: TlsInspection | undefined;
  readonly socket: Socket;
  readonly head: Buffer;
  readonly facts: AttemptFacts;
  /** The decided destination name: the leaf is minted for it. */
  readonly name: string;
  readonly handshakeTimeoutMs: number;
  readonly adopt: (tls: TLSSocket) => void;
}): Promise<void> {
  const { ctx, facts, socket } = options;
  const refuse = (verdict: Verdict): void => {
    emitEgress(ctx, facts, verdict);
    endConnection(socket);
  };
  if (options.inspection === undefined) {
    ctx.logger.error({ name: options.name }, "a rule inspects this destination but the sidecar has no sandbox CA");
    return refuse({ verdict: "block", reasons: ["requests-not-visible"] });
  }
  let context;
  try {
    context = await options.inspection.minter.contextFor(options.name);
  } catch (err) {
    ctx.logger.error({ err, name: options.name }, "could not mint a leaf certificate");
    return refuse({ verdict: "block", reasons: ["tls-handshake-failed"] });
  }
  const t = await terminateTls(socket, options.head, context, options.handshakeTimeoutMs);
  if (!t.ok) {
    // An attempt that never got to a request: its decide says why, its close carries the TLS error.
    const verdict: Verdict = { verdict: "block", reasons: [t.clientRejected ? "client-rejected-ca" : "tls-handshake-failed"] };
    emitEgress(ctx, facts, verdict);
    emitEgress(ctx, facts, verdict, { error: t.error });
    socket.destroy();
    return;
  }
  options.adopt(t.tls);
}
