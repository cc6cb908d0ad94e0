import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A small OTLP/HTTP trace receiver of ours on loopback: it accepts POST /v1/traces in the
 * JSON encoding (OTEL_EXPORTER_OTLP_PROTOCOL=http/json), answers as a collector does, and
 * keeps every span flattened, with its resource. Anything else gets 404 or 415.
 */
export type OtlpValue = string | number | boolean | OtlpValue[] | undefined;

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly name: string;
  readonly kind: number;
  readonly attributes: Readonly<Record<string, OtlpValue>>;
  readonly status: { readonly code: number; readonly message?: string };
  readonly startMs: number;
  readonly endMs: number;
  readonly events: readonly { readonly name: string; readonly attributes: Readonly<Record<string, OtlpValue>> }[];
  readonly resource: Readonly<Record<string, OtlpValue>>;
}

export interface OtlpCollector extends AsyncDisposable {
  /** The base URL, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string;
  readonly spans: readonly ReceivedSpan[];
  /** Request bodies as received (for "never contains" checks). */
  readonly bodies: readonly string[];
  readonly requests: number;
  /** Resolves with the spans once `check` accepts them; rejects after `timeoutMs`. */
  waitFor<T>(check: (spans: readonly ReceivedSpan[]) => T | undefined, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
}
type KeyValue = { key: string; value?: AnyValue };

function valueOf(v: AnyValue | undefined): OtlpValue {
  if (v === undefined) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(valueOf);
  return undefined;
}

function attributesOf(list: KeyValue[] | undefined): Record<string, OtlpValue> {
  const out: Record<string, OtlpValue> = {};
  for (const kv of list ?? []) out[kv.key] = valueOf(kv.value);
  return out;
}

const nanosToMs = (n: string | number | undefined): number => Number(BigInt(n ?? 0) / 1_000_000n);

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export async function startOtlpCollector(): Promise<OtlpCollector> {
  const spans: ReceivedSpan[] = [];
  const bodies: string[] = [];
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests += 1;
    if (req.method !== "POST" || req.url !== "/v1/traces") {
      res.writeHead(404).end();
      return;
    }
    if (!(req.headers["content-type"] ?? "").startsWith("application/json")) {
      res.writeHead(415).end();
      return;
    }
    readBody(req)
      .then((text) => {
        bodies.push(text);
        const body = JSON.parse(text) as {
          resourceSpans?: { resource?: { attributes?: KeyValue[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[];
        };
        for (const rs of body.resourceSpans ?? []) {
          const resource = attributesOf(rs.resource?.attributes);
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              const parent = s["parentSpanId"] as string | undefined;
              spans.push({
                traceId: s["traceId"] as string,
                spanId: s["spanId"] as string,
                parentSpanId: parent === undefined || parent === "" ? undefined : parent,
                name: s["name"] as string,
                kind: s["kind"] as number,
                attributes: attributesOf(s["attributes"] as KeyValue[] | undefined),
                status: (s["status"] as { code: number; message?: string } | undefined) ?? { code: 0 },
                startMs: nanosToMs(s["startTimeUnixNano"] as string),
                endMs: nanosToMs(s["endTimeUnixNano"] as string),
                events: ((s["events"] as { name: string; attributes?: KeyValue[] }[] | undefined) ?? []).map((e) => ({ name: e.name, attributes: attributesOf(e.attributes) })),
                resource,
              });
            }
          }
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      })
      .catch(() => res.writeHead(400).end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    bodies,
    get requests() {
      return requests;
    },
    async waitFor(check, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = check(spans);
        if (found !== undefined) return found;
        if (Date.now() > deadline) throw new Error(`the collector did not receive the expected spans in ${timeoutMs} ms; it has: ${spans.map((s) => s.name).join(", ") || "none"}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
