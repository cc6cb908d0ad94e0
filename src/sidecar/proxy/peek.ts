import type { Socket } from "node:net";

/**
 * Reads from a socket until a parser has seen enough, without losing a byte: when it
 * settles, the socket is paused with its listener removed, and every byte read so far is
 * returned for the caller to replay upstream. Bounded in size and time.
 */
export interface PeekParser<T> {
  /** Returns the answer, or undefined for "need more". */
  push(chunk: Buffer): T | undefined;
}

export type PeekOutcome<T> =
  | { readonly kind: "done"; readonly value: T; readonly bytes: Buffer }
  | { readonly kind: "timeout" | "too-large" | "eof" | "closed"; readonly bytes: Buffer }
  | { readonly kind: "error"; readonly bytes: Buffer; readonly error: Error };

export interface PeekOptions {
  readonly limit: number;
  readonly timeoutMs: number;
  /** Bytes already read from the socket by someone else (the `head` of a CONNECT). */
  readonly initial?: Buffer;
}

export function peek<T>(socket: Socket, parser: PeekParser<T>, options: PeekOptions): Promise<PeekOutcome<T>> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const bytes = (): Buffer => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));

    const settle = (outcome: PeekOutcome<T>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Pause before removing the listener: a flowing socket with no listener drops data.
      socket.pause();
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("error", onError);
      socket.off("close", onClose);
      resolve(outcome);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      // The parser sees the chunk first: one large segment may hold a whole answer and more.
      const value = parser.push(chunk);
      if (value !== undefined) settle({ kind: "done", value, bytes: bytes() });
      else if (size > options.limit) settle({ kind: "too-large", bytes: bytes() });
    };
    const onEnd = (): void => settle({ kind: "eof", bytes: bytes() });
    const onError = (error: Error): void => settle({ kind: "error", bytes: bytes(), error });
    const onClose = (): void => settle({ kind: "closed", bytes: bytes() });

    const timer = setTimeout(() => settle({ kind: "timeout", bytes: bytes() }), options.timeoutMs);
    if (options.initial !== undefined && options.initial.length > 0) onData(options.initial);
    if (settled) return;
    if (socket.destroyed) return settle({ kind: "closed", bytes: bytes() });
    socket.on("data", onData);
    socket.on("end", onEnd);
    socket.on("error", onError);
    socket.on("close", onClose);
    socket.resume();
  });
}
