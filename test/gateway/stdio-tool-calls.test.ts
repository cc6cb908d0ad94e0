import { PassThrough } from "node:stream";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { queryAuditLog } from "../../src/audit/index.js";
import { serveStdio } from "../../src/gateway/stdio-endpoint.js";
import { asToolResult, plainToolCall } from "../../src/gateway/stdio-tool-calls.js";
import { silentLogger } from "../../src/log.js";
import { approve, eventually, FAST_GATEWAY, openTestGateway, project, type Project } from "./support/harness.js";

/**
 * The stdio endpoint answers tools/call without the SDK Server (stdio-tool-calls.ts). These
 * tests hold it to the SDK's answers: the same lines, sent to a session with the direct path
 * and to one without it, get the same replies and leave the same audit.
 */
let p: Project;
beforeEach(() => {
  p = project();
});
afterEach(() => p[Symbol.dispose]());

const AWS_ID = ["AKIA", "IOSFODNN7", "EXAMPLE"].join("");

interface Reply {
  readonly id?: unknown;
  readonly result?: unknown;
  readonly error?: { code: number; message: string; data?: unknown };
  readonly method?: string;
}

/** A stdio session over in-memory pipes: send raw lines, read the reply lines. */
async function session(opened: Awaited<ReturnType<typeof openTestGateway>>, directToolCalls: boolean) {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  let text = "";
  stdout.setEncoding("utf8").on("data", (d: string) => (text += d));
  const endpoint = await serveStdio(opened.gateway, { identity: "alice", stdin, stdout, version: "0.0.0-test", logger: silentLogger(), directToolCalls });
  const replies = (): Reply[] =>
    text
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Reply);
  return {
    send: (line: string): void => void stdin.write(`${line}\n`),
    replies,
    /** Waits until `n` replies with an id arrived (and a moment more, for any stray ones). */
    settle: async (n: number): Promise<Reply[]> => {
      await eventually(() => (replies().filter((r) => r.id !== undefined).length >= n ? true : undefined), 15_000, `${n} replies`);
      await new Promise((r) => setTimeout(r, 100));
      return replies();
    },
    stop: () => endpoint.stop(),
  };
}

const INIT = JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } } });
const call = (id: unknown, params: unknown, extra: Record<string, unknown> = {}): string => JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params, ...extra });

/** Requests of every shape: plain ones the direct path takes, and odd ones it leaves to the SDK. */
const LINES = [
  INIT,
  JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  call(1, { name: "alpha__echo", arguments: { message: "hi" } }),
  call("two", { name: "alpha__echo", arguments: { message: "with token" }, _meta: { progressToken: "p2", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" } }),
  call(3, { name: "alpha__add", arguments: { a: 1, b: 2 } }), // RBAC: alice may not
  call(4, { name: "alpha__nothing" }), // unknown tool
  call(5, { name: "alpha__fail" }), // a tool error (isError result)
  call(6, { name: "alpha__echo", arguments: { message: `key ${AWS_ID}` } }), // a credential in the arguments (ENFORCING)
  call(7, { name: 42 }), // params of the wrong shape
  call(8, { name: "alpha__echo", arguments: ["not", "a", "record"] }),
  call(9, { name: "alpha__echo", arguments: { message: "x" }, task: { ttl: 1000 } }), // task augmentation
  call(10, { name: "alpha__echo", arguments: { message: "x" } }, { extra: true }), // not a strict JSON-RPC request: never answered
  call(11, { name: "alpha__echo", arguments: { message: "x" }, _meta: { progressToken: 1.5 } }), // not a request by JSONRPCRequestSchema: never answered
  call(1.5, { name: "alpha__echo", arguments: { message: "x" } }), // not an integer id: never answered
  JSON.stringify({ jsonrpc: "1.0", id: 12, method: "tools/call", params: { name: "alpha__echo" } }),
  call(13, { name: "alpha__echo", arguments: { message: "last" } }),
];
/** Replies with an id that the SDK gives to LINES: all but 10, 11, 1.5 and 12 (not JSON-RPC requests by its schema). */
const ANSWERED = 11;

async function gatewayForAlice(): Promise<Awaited<ReturnType<typeof openTestGateway>>> {
  const file = await p.policy("alpha");
  p.writeConfig({
    servers: ["policies/alpha.yaml"],
    identity: "alice",
    gateway: FAST_GATEWAY,
    rbac: { roles: { reader: { allow: ["alpha__echo", "alpha__fail", "alpha__slow", "alpha__nothing"] } }, bindings: { alice: ["reader"] } },
  });
  await approve(p.config, [file]);
  return openTestGateway(p.config);
}

function byId(replies: readonly Reply[]): Map<string, Reply> {
  return new Map(replies.filter((r) => r.id !== undefined).map((r) => [JSON.stringify(r.id), r]));
}

describe("tools/call on the stdio endpoint without the SDK Server", () => {
  it("answers every request exactly as the SDK path does, and audits the same calls", async () => {
    await using opened = await gatewayForAlice();
    // Both sessions find the server started, its manifest known (a refusal names the tool by it).
    await opened.gateway.server("alpha")?.ensureManifest();
    const answers: Map<string, Reply>[] = [];
    const audits: string[][] = [];
    for (const direct of [false, true]) {
      const s = await session(opened, direct);
      for (const line of LINES) s.send(line);
      answers.push(byId(await s.settle(ANSWERED)));
      await s.stop();
      opened.audit.flush();
      const records = queryAuditLog(opened.audit.path, { kinds: ["tool-call"] }).records.map((r) => r.data as { tool: string; outcome: string; arguments: unknown });
      // Calls run concurrently: their records come in the order they end.
      audits.push(records.slice(audits.flat().length).map((r) => `${r.tool}/${r.outcome}/${JSON.stringify(r.arguments)}`).sort());
    }
    const [sdk, direct] = answers as [Map<string, Reply>, Map<string, Reply>];
    expect([...direct.keys()].sort()).toEqual([...sdk.keys()].sort());
    expect(sdk.size).toBe(ANSWERED);
    for (const [id, reply] of sdk) expect(direct.get(id), `reply to id ${id}`).toEqual(reply);
    expect(audits[1]).toEqual(audits[0]);

    // What the replies say, so that "equal" is not "equally wrong".
    expect(sdk.get("1")?.result).toEqual({ content: [{ type: "text", text: "alpha: hi" }] });
    expect(sdk.get('"two"')?.result).toEqual({ content: [{ type: "text", text: "alpha: with token" }] });
    expect(sdk.get("3")?.error).toMatchObject({ code: -32010, data: { code: "HANGAR_GATEWAY_DENIED", permission: "alpha__add" } });
    expect(sdk.get("4")?.error?.data).toMatchObject({ code: "HANGAR_GATEWAY_UNKNOWN" });
    expect(sdk.get("5")?.result).toEqual({ content: [{ type: "text", text: "this tool always fails" }], isError: true });
    expect(sdk.get("6")?.error).toMatchObject({ code: -32016, data: { code: "HANGAR_GATEWAY_ARGUMENT_REFUSED", detectors: ["aws-access-key"] } });
    for (const id of ["7", "8", "9"]) expect(sdk.get(id)?.error, `id ${id}`).toBeDefined();
    for (const id of ["10", "11", "1.5", "12"]) expect(sdk.has(id), `id ${id}`).toBe(false);
    expect(sdk.get("13")?.result).toEqual({ content: [{ type: "text", text: "alpha: last" }] });
    expect(audits[0]).toContain(`echo/denied/${JSON.stringify({ message: "[redacted: aws-access-key]" })}`);
    expect(audits[0]).toContain(`add/denied/${JSON.stringify({ a: 1, b: 2 })}`);
  });

  it("a cancelled call gets no answer and is audited as cancelled; closing the session aborts calls in flight", async () => {
    await using opened = await gatewayForAlice();
    const s = await session(opened, true);
    s.send(INIT);
    s.send(call(1, { name: "alpha__slow", arguments: { ms: 1500 } }));
    await new Promise((r) => setTimeout(r, 300));
    s.send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 1, reason: "user gave up" } }));
    s.send(call(2, { name: "alpha__echo", arguments: { message: "after" } }));
    await s.settle(2);
    await new Promise((r) => setTimeout(r, 1600));
    const replies = byId(s.replies());
    expect(replies.has("1")).toBe(false);
    expect(replies.get("2")?.result).toEqual({ content: [{ type: "text", text: "alpha: after" }] });

    s.send(call(3, { name: "alpha__slow", arguments: { ms: 1000 } }));
    await new Promise((r) => setTimeout(r, 200));
    await s.stop();
    await new Promise((r) => setTimeout(r, 1200));
    expect(byId(s.replies()).has("3")).toBe(false);

    opened.audit.flush();
    const outcomes = queryAuditLog(opened.audit.path, { kinds: ["tool-call"], tool: "slow" }).records.map((r) => (r.data as { outcome: string }).outcome);
    expect(outcomes).toEqual(["cancelled", "cancelled"]);
  });
});

describe("plainToolCall", () => {
  it("takes only strict JSON-RPC tools/call requests of CallToolRequestSchema's shape, without task augmentation", () => {
    const ok = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "a__b", arguments: { x: 1 }, _meta: { progressToken: "t" } } };
    expect(plainToolCall(ok)).toEqual({ id: 1, name: "a__b", args: { x: 1 }, meta: { progressToken: "t" } });
    const refused: Record<string, unknown>[] = [
      { ...ok, jsonrpc: "1.0" },
      { ...ok, id: 1.5 },
      { ...ok, id: null },
      { ...ok, id: 2 ** 60 },
      { ...ok, other: 1 },
      { ...ok, params: { ...ok.params, name: 1 } },
      { ...ok, params: { ...ok.params, arguments: [1] } },
      { ...ok, params: { ...ok.params, arguments: null } },
      { ...ok, params: { ...ok.params, task: {} } },
      { ...ok, params: { ...ok.params, _meta: { progressToken: {} } } },
      { ...ok, params: { ...ok.params, _meta: { "io.modelcontextprotocol/related-task": { taskId: "t" } } } },
      { ...ok, params: { ...ok.params, _meta: [] } },
      { ...ok, params: [] },
    ];
    for (const message of refused) expect(plainToolCall(message), JSON.stringify(message)).toBeUndefined();
  });
});

describe("asToolResult", () => {
  it("gives what CallToolResultSchema gives: the result itself when it is that already, the schema's output or its refusal otherwise", () => {
    const results: unknown[] = [
      { content: [{ type: "text", text: "a" }] },
      { content: [{ type: "text", text: "a" }], isError: true, structuredContent: { n: 1 }, extra: { kept: true } },
      { content: [] },
      { content: [{ type: "text", text: "a", smuggled: "stripped by the schema" }] },
      { content: [{ type: "text", text: "a", annotations: { audience: ["user"], other: 1 } }] },
      { content: [{ type: "image", data: "AA==", mimeType: "image/png" }] },
      { content: [{ type: "text", text: "a" }], _meta: { "io.modelcontextprotocol/related-task": { taskId: "t", more: 1 } } },
      {},
      { content: [{ type: "text", text: 1 }] },
      { content: [{ type: "text", text: "a" }], isError: "yes" },
      { content: [{ type: "text", text: "a" }], structuredContent: [1] },
      { content: "text" },
    ];
    for (const result of results) {
      const expected = CallToolResultSchema.safeParse(result);
      const got = asToolResult(result);
      expect(got.ok, JSON.stringify(result)).toBe(expected.success);
      if (got.ok && expected.success) expect(got.result, JSON.stringify(result)).toEqual(expected.data);
      if (!got.ok && !expected.success) expect(got.message).toBe(expected.error.message);
    }
  });
});
