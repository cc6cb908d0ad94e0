import type { Transport, TransportSendOptions } from "@modelcontextprotocol/sdk/shared/transport.js";
import { ErrorCode, McpError, type JSONRPCMessage, type MessageExtraInfo, type Progress } from "@modelcontextprotocol/sdk/types.js";

/**
 * Sits between an upstream server's transport and the gateway's SDK Client, and sends the
 * hot request (tools/call) itself: the Client's Protocol validates each answer with zod
 * three times (the message kinds, then the result schema) and arms its own bookkeeping;
 * here an answer to one of our requests is checked by hand to the same rules (a strict
 * JSON-RPC result with an object `result`, or a JSON-RPC error) and handed over as it came.
 * What this does not recognise as an answer to its own request goes to the Client, exactly
 * as before (which reports it, and leaves the request to time out, as it did).
 *
 * Semantics are the Protocol's: a timeout or an abort sends notifications/cancelled and
 * rejects (McpError RequestTimeout, or the abort reason), a closed connection rejects every
 * request in flight (McpError ConnectionClosed), an error answer rejects with its McpError.
 * Our request ids are numbers from 1e9 up, far from the Protocol's (from 0).
 */
export interface DirectRequestOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  readonly onprogress?: (progress: Progress) => void;
}

interface Pending {
  readonly resolve: (result: Record<string, unknown>) => void;
  readonly reject: (err: unknown) => void;
  readonly onprogress: ((progress: Progress) => void) | undefined;
  readonly timer: NodeJS.Timeout;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: (() => void) | undefined;
}

const FIRST_ID = 1_000_000_000;
const RESULT_KEYS = new Set(["jsonrpc", "id", "result"]);
const ERROR_KEYS = new Set(["jsonrpc", "id", "error"]);
const RELATED_TASK_META_KEY = "io.modelcontextprotocol/related-task";

export class DirectCallTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void;
  private readonly pending = new Map<number, Pending>();
  private nextId = FIRST_ID;

  constructor(private readonly inner: Transport) {
    inner.onmessage = (message, extra) => {
      if (!this.take(message as unknown as Record<string, unknown>)) this.onmessage?.(message, extra);
    };
    inner.onclose = () => {
      this.failAll();
      this.onclose?.();
    };
    inner.onerror = (error) => this.onerror?.(error);
  }

  get sessionId(): string | undefined {
    return this.inner.sessionId;
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    return this.inner.send(message, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Sends `method` with `params` and resolves with the answer's `result` object. */
  request(method: string, params: Record<string, unknown>, options: DirectRequestOptions): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const signal = options.signal;
      if (signal?.aborted === true) {
        reject(signal.reason);
        return;
      }
      const id = this.nextId++;
      const cancel = (reason: unknown): void => {
        if (!this.forget(id)) return;
        this.inner.send({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: id, reason: String(reason) } }).catch((err: unknown) => this.onerror?.(new Error(`Failed to send cancellation: ${String(err)}`)));
        reject(reason instanceof McpError ? reason : new McpError(ErrorCode.RequestTimeout, String(reason)));
      };
      const timeoutMs = options.timeoutMs;
      const timer = setTimeout(() => cancel(McpError.fromError(ErrorCode.RequestTimeout, "Request timed out", { timeout: timeoutMs })), timeoutMs);
      const onAbort = signal !== undefined ? (): void => cancel(signal.reason) : undefined;
      if (onAbort !== undefined) signal!.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, { resolve, reject, onprogress: options.onprogress, timer, signal, onAbort });
      const sent = options.onprogress !== undefined ? { ...params, _meta: { ...(params["_meta"] as object | undefined), progressToken: id } } : params;
      this.inner.send({ method, params: sent, jsonrpc: "2.0", id } as JSONRPCMessage).catch((err: unknown) => {
        if (this.forget(id)) reject(err);
      });
    });
  }

  /** True when `message` answered (or reported progress on) a request of ours and was handled here. */
  private take(message: Record<string, unknown>): boolean {
    if (this.pending.size === 0) return false;
    const id = message["id"];
    if (typeof id !== "number") return message["method"] === "notifications/progress" ? this.progress(message) : false;
    const pending = this.pending.get(id);
    if (pending === undefined || message["jsonrpc"] !== "2.0") return false;
    if ("result" in message) {
      const result = message["result"];
      if (!hasOnly(message, RESULT_KEYS) || !isPlainObject(result) || !validResultMeta(result["_meta"])) return false;
      this.forget(id);
      pending.resolve(result);
      return true;
    }
    const error = message["error"];
    if (!hasOnly(message, ERROR_KEYS) || !isPlainObject(error) || !Number.isSafeInteger(error["code"]) || typeof error["message"] !== "string") return false;
    this.forget(id);
    pending.reject(McpError.fromError(error["code"] as number, error["message"], error["data"]));
    return true;
  }

  private progress(message: Record<string, unknown>): boolean {
    const params = message["params"];
    if (message["jsonrpc"] !== "2.0" || !hasOnly(message, PROGRESS_KEYS) || !isPlainObject(params)) return false;
    const { progressToken, progress, total, message: text } = params;
    if (typeof progressToken !== "number") return false;
    const pending = this.pending.get(progressToken);
    if (pending?.onprogress === undefined) return false;
    if (typeof progress !== "number" || !optional(total, "number") || !optional(text, "string")) return false;
    // The fields of ProgressNotificationSchema only, as the SDK's parse would keep.
    pending.onprogress({ progress, ...(total !== undefined ? { total: total as number } : {}), ...(text !== undefined ? { message: text as string } : {}) });
    return true;
  }

  /** Drops request `id`'s bookkeeping; false when it was no longer pending. */
  private forget(id: number): boolean {
    const pending = this.pending.get(id);
    if (pending === undefined) return false;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if (pending.onAbort !== undefined) pending.signal?.removeEventListener("abort", pending.onAbort);
    return true;
  }

  private failAll(): void {
    const error = McpError.fromError(ErrorCode.ConnectionClosed, "Connection closed");
    for (const [id, pending] of [...this.pending]) {
      this.forget(id);
      pending.reject(error);
    }
  }
}

const PROGRESS_KEYS = new Set(["jsonrpc", "method", "params"]);

function hasOnly(message: Record<string, unknown>, keys: ReadonlySet<string>): boolean {
  for (const key in message) if (!keys.has(key)) return false;
  return true;
}

/** ResultSchema's `_meta`: absent, or an object whose progress token and related task (if any) are well formed. */
function validResultMeta(meta: unknown): boolean {
  if (meta === undefined) return true;
  if (!isPlainObject(meta)) return false;
  const token = meta["progressToken"];
  if (token !== undefined && typeof token !== "string" && !Number.isSafeInteger(token)) return false;
  const related = meta[RELATED_TASK_META_KEY];
  return related === undefined || (isPlainObject(related) && typeof related["taskId"] === "string");
}

function optional(value: unknown, type: "number" | "string"): boolean {
  return value === undefined || typeof value === type;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}
