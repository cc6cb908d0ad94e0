import type { Socket } from "node:net";
import type { SidecarContext } from "../../sidecar-context.js";
import { clientOf, egressEvent, newAttempt, type AttemptFacts } from "../egress-event.js";
import { httpResponse } from "../http-reply.js";

/**
 * What a client gets when llhttp cannot read its request (malformed framing, smuggling
 * attempts, an oversized head, a slow one): a status, an event, and the connection closed.
 * Shared by every node:http server the sidecar runs.
 */
export function answerClientError(ctx: SidecarContext, err: NodeJS.ErrnoException, socket: Socket, path: AttemptFacts["path"]): void {
  if (err.code === "ECONNRESET" || !socket.writable) return void socket.destroy();
  const status = err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
  if (status !== 408) {
    const facts = newAttempt(ctx, path, "http", clientOf(socket));
    const reasons = status === 431 ? (["header-too-large"] as const) : (["malformed-request"] as const);
    ctx.events.emit(egressEvent(ctx, facts, { verdict: "block", reasons }));
  }
  // The parser is gone; write the answer and let the linger timer reap the socket.
  socket.end(httpResponse(status, `Hangar: ${status === 431 ? "request headers too large" : "bad request"}.`));
  const timer = setTimeout(() => socket.destroy(), 2000);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}
