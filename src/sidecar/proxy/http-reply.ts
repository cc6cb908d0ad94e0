import type { Socket } from "node:net";

/**
 * Ending a client connection ourselves, politely: a short HTTP response where the client
 * speaks HTTP, then FIN. Input still arriving is read and dropped (closing with unread
 * data would send RST and could cost the client our response), and a linger timer
 * destroys the socket if the client never closes its side.
 */
const LINGER_MS = 2000;

export const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: "Bad Request",
  403: "Forbidden",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  502: "Bad Gateway",
};

export function httpResponse(status: number, body: string, extraHeaders: Readonly<Record<string, string>> = {}): string {
  const text = body.endsWith("\n") ? body : `${body}\n`;
  const headers = Object.entries(extraHeaders)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  return (
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(text)}\r\n` +
    `Connection: close\r\n${headers}\r\n${text}`
  );
}

export function endConnection(socket: Socket, data?: string): void {
  if (socket.destroyed) return;
  socket.on("error", () => socket.destroy());
  socket.resume();
  if (data !== undefined && socket.writable) socket.end(data);
  else socket.end();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}
