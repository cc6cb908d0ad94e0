import { CallToolResultSchema, ErrorCode, type Progress } from "@modelcontextprotocol/sdk/types.js";
import type { Logger } from "pino";
import type { Caller, Gateway, RequestOptions } from "./gateway.js";
import { traceContextOf } from "./mcp-endpoint.js";
import { toMcpError } from "./mcp-errors.js";

/**
 * tools/call on the stdio endpoint without the SDK Server in between: the hot path of the
 * gateway. The SDK routes each message through four zod schemas (the JSON-RPC kinds, then
 * the method's request and result schemas), an AbortController and a chain of promise hops;
 * here a request of the plain shape goes straight to Gateway.callTool (which makes every
 * check: RBAC, tool and argument rules, flows, manifest, rate, attribution, audit) and its
 * answer is written as one line.
 *
 * Only requests the SDK would accept as they are take this path: anything else (a task
 * request, a related-task `_meta`, unknown top-level keys, params of another shape) is left
 * to the SDK Server, which answers or refuses it as before. The answer is the SDK's: a result
 * is checked against CallToolResultSchema (below, `asToolResult`), an error becomes the same
 * JSON-RPC error (toMcpError), a cancelled call gets no answer, and closing aborts what is in flight.
 */
export class StdioToolCalls {
  /** Calls in flight by request id, for notifications/cancelled and close. */
  private readonly inFlight = new Map<string | number, AbortController>();
  private closed = false;

  constructor(
    private readonly gateway: Gateway,
    private readonly caller: () => Caller,
    private readonly writeLine: (line: string) => void,
    private readonly logger: Logger,
  ) {}

  /**
   * Takes a tools/call request of the plain shape (true: it is answered here) and hears
   * cancellations of the calls it took (false: the SDK routes the message as well).
   */
  take(message: Readonly<Record<string, unknown>>): boolean {
    if (this.closed) return false;
    const method = message["method"];
    if (method === "tools/call") return this.call(message);
    if (method === "notifications/cancelled") this.cancel(message);
    return false;
  }

  /** The session closed: every call in flight is aborted and gets no answer (as the SDK's Protocol does). */
  close(): void {
    this.closed = true;
    for (const controller of this.inFlight.values()) controller.abort();
    this.inFlight.clear();
  }

  private call(message: Readonly<Record<string, unknown>>): boolean {
    const request = plainToolCall(message);
    if (request === undefined) return false;
    const { id, name, args, meta } = request;
    const controller = new AbortController();
    this.inFlight.set(id, controller);
    const token = meta?.["progressToken"] as string | number | undefined;
    const trace = traceContextOf(meta);
    const options: RequestOptions = {
      signal: controller.signal,
      ...(token !== undefined ? { onprogress: (p: Progress) => this.progress(controller.signal, p, token) } : {}),
      ...(trace !== undefined ? { trace } : {}),
    };
    this.gateway.callTool(this.caller(), name, args, options).then(
      (result) => {
        if (controller.signal.aborted) return;
        const checked = asToolResult(result);
        if (checked.ok) this.writeLine(JSON.stringify({ result: checked.result, jsonrpc: "2.0", id }));
        else this.writeError(id, ErrorCode.InvalidParams, `Invalid tools/call result: ${checked.message}`, undefined);
      },
      (err: unknown) => {
        if (controller.signal.aborted) return;
        const mcp = toMcpError(err);
        this.writeError(id, Number.isSafeInteger(mcp.code) ? mcp.code : ErrorCode.InternalError, mcp.message, mcp.data);
      },
    ).finally(() => {
      if (this.inFlight.get(id) === controller) this.inFlight.delete(id);
    });
    return true;
  }

  private writeError(id: string | number, code: number, message: string, data: unknown): void {
    this.writeLine(JSON.stringify({ jsonrpc: "2.0", id, error: { code, message, ...(data !== undefined ? { data } : {}) } }));
  }

  private progress(signal: AbortSignal, progress: Progress, progressToken: string | number): void {
    if (signal.aborted || this.closed) return;
    try {
      this.writeLine(JSON.stringify({ method: "notifications/progress", params: { ...progress, progressToken }, jsonrpc: "2.0" }));
    } catch (err) {
      this.logger.debug({ err }, "progress notification not delivered");
    }
  }

  private cancel(message: Readonly<Record<string, unknown>>): void {
    const params = message["params"];
    if (message["jsonrpc"] !== "2.0" || !isPlainObject(params)) return;
    const requestId = params["requestId"];
    if (!isRequestId(requestId)) return;
    const controller = this.inFlight.get(requestId);
    if (controller === undefined) return;
    const reason = params["reason"];
    controller.abort(typeof reason === "string" ? reason : undefined);
  }
}

interface PlainToolCall {
  readonly id: string | number;
  readonly name: string;
  readonly args: Record<string, unknown> | undefined;
  readonly meta: Readonly<Record<string, unknown>> | undefined;
}

const REQUEST_KEYS = new Set(["jsonrpc", "id", "method", "params"]);
const RELATED_TASK_META_KEY = "io.modelcontextprotocol/related-task";

/**
 * The request, when it has exactly the shape the SDK accepts without change: a strict
 * JSON-RPC request (JSONRPCRequestSchema) whose params pass CallToolRequestSchema, with no
 * task augmentation. Undefined sends it down the SDK's path.
 */
export function plainToolCall(message: Readonly<Record<string, unknown>>): PlainToolCall | undefined {
  if (message["jsonrpc"] !== "2.0" || message["method"] !== "tools/call") return undefined;
  const id = message["id"];
  if (!isRequestId(id)) return undefined;
  for (const key in message) if (!REQUEST_KEYS.has(key)) return undefined;
  const params = message["params"];
  if (!isPlainObject(params) || typeof params["name"] !== "string" || params["task"] !== undefined) return undefined;
  const args = params["arguments"];
  if (args !== undefined && !isPlainObject(args)) return undefined;
  const meta = params["_meta"];
  if (meta !== undefined) {
    if (!isPlainObject(meta) || meta[RELATED_TASK_META_KEY] !== undefined) return undefined;
    const token = meta["progressToken"];
    if (token !== undefined && !isRequestId(token)) return undefined;
  }
  return { id, name: params["name"], args, meta };
}

/**
 * What the SDK Server answers with for a tools/call result: CallToolResultSchema's output.
 * A result of the usual shape (text content only, no annotations, no `_meta`) is that
 * output already, and is sent as it is; any other goes through the schema.
 */
export function asToolResult(result: unknown): { ok: true; result: unknown } | { ok: false; message: string } {
  if (isPlainTextResult(result)) return { ok: true, result };
  const parsed = CallToolResultSchema.safeParse(result);
  return parsed.success ? { ok: true, result: parsed.data } : { ok: false, message: parsed.error.message };
}

/**
 * True when CallToolResultSchema's output equals `result`: `content` an array of
 * `{type: "text", text}` blocks with no other key (the schema strips unknown keys of a
 * block), `isError` absent or boolean, `structuredContent` absent or an object, no `_meta`
 * (whose related-task entry the schema would strip). Other top-level keys are kept by the
 * schema (a loose object), so they may be there.
 */
function isPlainTextResult(result: unknown): boolean {
  if (!isPlainObject(result)) return false;
  const content = result["content"];
  if (!Array.isArray(content) || result["_meta"] !== undefined) return false;
  const isError = result["isError"];
  if (isError !== undefined && typeof isError !== "boolean") return false;
  const structured = result["structuredContent"];
  if (structured !== undefined && !isPlainObject(structured)) return false;
  for (const block of content) {
    if (!isPlainObject(block) || block["type"] !== "text" || typeof block["text"] !== "string") return false;
    for (const key in block) if (key !== "type" && key !== "text") return false;
  }
  return true;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function isRequestId(value: unknown): value is string | number {
  return typeof value === "string" || Number.isSafeInteger(value);
}
