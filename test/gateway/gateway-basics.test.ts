import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { queryAuditLog } from "../../src/audit/index.js";
import { approve, connectClient, FAST_GATEWAY, openTestGateway, project, textOf, type Project } from "./support/harness.js";

let p: Project;
beforeEach(() => {
  p = project();
});
afterEach(() => p[Symbol.dispose]());

async function twoServers(): Promise<string[]> {
  const files = [await p.policy("alpha"), await p.policy("beta")];
  p.writeConfig({ servers: ["policies/alpha.yaml", "policies/beta.yaml"], identity: "dev", gateway: FAST_GATEWAY });
  await approve(p.config, files);
  return files;
}

describe("gateway over two servers", () => {
  it("lists namespaced tools of both servers and routes calls to the right one", async () => {
    await twoServers();
    await using opened = await openTestGateway(p.config);
    await using client = await connectClient(opened, "dev");
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    expect(names).toContain("alpha__echo");
    expect(names).toContain("beta__echo");
    expect(names).toContain("alpha__add");
    expect(tools.find((t) => t.name === "beta__echo")?.description).toBe("Echoes a message back.");

    expect(textOf(await client.callTool({ name: "alpha__echo", arguments: { message: "hi" } }))).toBe("alpha: hi");
    expect(textOf(await client.callTool({ name: "beta__echo", arguments: { message: "hi" } }))).toBe("beta: hi");
    expect(textOf(await client.callTool({ name: "beta__add", arguments: { a: 2, b: 3 } }))).toBe("5");

    opened.audit.flush();
    const calls = queryAuditLog(opened.audit.path, { kinds: ["tool-call"] }).records.map((r) => r.data as { server: string; tool: string; identity: string; outcome: string });
    expect(calls.map((c) => `${c.server}/${c.tool}/${c.identity}/${c.outcome}`)).toEqual(["alpha/echo/dev/ok", "beta/echo/dev/ok", "beta/add/dev/ok"]);
  });

  it("proxies prompts and resources, namespaced", async () => {
    await twoServers();
    await using opened = await openTestGateway(p.config);
    await using client = await connectClient(opened, "dev");
    const { prompts } = await client.listPrompts();
    expect(prompts.map((x) => x.name).sort()).toEqual(["alpha__greet", "beta__greet"]);
    const prompt = await client.getPrompt({ name: "beta__greet", arguments: { who: "Ada" } });
    expect(prompt.messages[0]?.content).toEqual({ type: "text", text: "Say hello to Ada from beta." });

    const { resources } = await client.listResources();
    expect(resources.map((r) => r.uri).sort()).toEqual(["hangar://alpha/fixture://info", "hangar://beta/fixture://info"]);
    const read = await client.readResource({ uri: "hangar://alpha/fixture://info" });
    expect(read.contents[0]).toMatchObject({ uri: "hangar://alpha/fixture://info", text: "fixture server alpha" });
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate).sort()).toEqual(["hangar://alpha/fixture://items/{id}", "hangar://beta/fixture://items/{id}"]);
    const item = await client.readResource({ uri: "hangar://beta/fixture://items/42" });
    expect(item.contents[0]).toMatchObject({ text: "item 42 of beta" });
  });
});
