import { request } from "node:http";
import { pipeline, Readable, Transform } from "node:stream";
import type { FetchLike } from "@modelcontextprotocol/sdk/shared/transport.js";

/**
 * A `fetch` that dials a Unix socket, whatever host the URL names: the control plane's way to a
 * bridge in a Docker sandbox, whose network the host has no address on. For the SDK's
 * StreamableHTTPClientTransport (`{ fetch: unixSocketFetch(path) }`); the response body streams,
 * so server-sent events arrive as they are written.
 *
 * The bridge runs beside the untrusted server, so what it sends is bounded like the stdio path:
 * no event (the bytes between two blank lines, or a whole JSON body) longer than
 * `maxEventBytes` (default 10 MiB, as the SDK's stdio ReadBuffer); a longer one fails the body.
 */
export function unixSocketFetch(socketPath: string, options: { readonly maxEventBytes?: number } = {}): FetchLike {
  const maxEventBytes = options.maxEventBytes ?? 10 * 1024 * 1024;
  return async (input, init = {}) => {
    const url = new URL(String(input));
    const headers = new Headers(init.headers);
    const body = init.body === undefined || init.body === null ? undefined : typeof init.body === "string" ? init.body : Buffer.from(await new Response(init.body).arrayBuffer());
    return new Promise<Response>((resolve, reject) => {
      const signal = init.signal ?? undefined;
      signal?.throwIfAborted();
      const req = request({ socketPath, method: init.method ?? "GET", path: `${url.pathname}${url.search}`, headers: { ...Object.fromEntries(headers), host: url.host } }, (res) => {
        const out = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) out.append(name, v);
        }
        const status = res.statusCode ?? 502;
        // A Response with a body may not have status 204 or 304.
        const stream = status === 204 || status === 304 ? null : (Readable.toWeb(bounded(res, maxEventBytes, socketPath)) as ReadableStream<Uint8Array>);
        if (stream === null) res.resume();
        resolve(new Response(stream, { status, statusText: res.statusMessage ?? "", headers: out }));
      });
      const onAbort = (): void => void req.destroy(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
      signal?.addEventListener("abort", onAbort, { once: true });
      req.once("close", () => signal?.removeEventListener("abort", onAbort));
      req.once("error", reject);
      req.end(body);
    });
  };
}

/** The response through eventBound; an aborted response fails the bounded stream too (pipeline destroys it). */
function bounded(res: Readable, max: number, socketPath: string): Transform {
  const out = eventBound(max, socketPath);
  pipeline(res, out, () => undefined);
  return out;
}

/** Passes bytes through, failing once more than `max` of them arrive without an event boundary (a blank line). */
function eventBound(max: number, socketPath: string): Transform {
  let since = 0;
  let newlines = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      for (const byte of chunk) {
        if (byte === 0x0a) newlines += 1;
        else if (byte !== 0x0d) newlines = 0;
        since = newlines >= 2 ? 0 : since + 1;
        if (since > max) {
          done(new Error(`the MCP endpoint at ${socketPath} sent an event longer than ${max} bytes`));
          return;
        }
      }
      done(null, chunk);
    },
  });
}
