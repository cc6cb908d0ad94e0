import type { IncomingMessage } from "node:http";

/**
 * A request's body, read up to a bound before the request is decided, so its shape (field
 * names, never values) is judged before a byte of it is forwarded.
 */
export interface BodyPrefix {
  readonly bytes: Buffer;
  readonly truncated: boolean;
}

/** Whether llhttp framed a body for this request (Transfer-Encoding, or a non-zero Content-Length). */
export function hasBody(req: IncomingMessage): boolean {
  return req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
}

/**
 * Reads the body up to `max` bytes (all of it when it is smaller) so its shape can be decided
 * before a byte is forwarded. Past the bound the request is paused, and the rest streams on
 * after the prefix once the request is permitted.
 */
export function readBodyPrefix(req: IncomingMessage, max: number): Promise<BodyPrefix | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (value: BodyPrefix | undefined): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onGone);
      req.off("close", onGone);
      resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (size <= max) return;
      req.pause();
      settle({ bytes: Buffer.concat(chunks, size), truncated: true });
    };
    const onEnd = (): void => settle({ bytes: Buffer.concat(chunks, size), truncated: false });
    // Cut short (a malformed chunk, a reset): nothing to decide, and llhttp's error handler
    // has already answered and recorded it.
    const onGone = (): void => settle(undefined);
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onGone);
    req.once("close", onGone);
  });
}

/** Header names as sent (the shape lower-cases and filters them). */
export function headerNames(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) out.push(raw[i]!);
  return out;
}
