import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  ListPromptsResultSchema,
  ListResourcesResultSchema,
  ListResourceTemplatesResultSchema,
  ListToolsResultSchema,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ToolListChangedNotificationSchema,
  type Progress,
  type Prompt,
  type Resource,
  type ResourceTemplate,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";
import * as z from "zod";
import { DirectCallTransport } from "./direct-call-transport.js";
import type { LaunchedServer } from "./server-launcher.js";

/**
 * The gateway's MCP client to one upstream server. Lists are fetched whole (following
 * cursors, bounded), validated with the SDK's schemas; call, prompt and resource results
 * are passed through as they came (the gateway's own server validates what it returns),
 * so the hot path parses each result once, not twice. tools/call is sent past the Client's
 * Protocol (direct-call-transport.ts), which checks the answer's shape by hand.
 */
export interface UpstreamManifest {
  readonly tools: readonly Tool[];
  readonly prompts: readonly Prompt[];
  readonly resources: readonly Resource[];
  readonly resourceTemplates: readonly ResourceTemplate[];
}

export interface UpstreamRequestOptions {
  readonly signal?: AbortSignal;
  readonly timeoutMs: number;
  readonly onprogress?: (progress: Progress) => void;
}

/** Results pass through; the gateway's Server validates them against the method's schema. */
const PassThroughResult = z.looseObject({});
export type UpstreamResult = z.output<typeof PassThroughResult>;

/** No honest server lists more; a server that pages forever is cut off. */
const MAX_LIST_PAGES = 100;

export class UpstreamClient {
  private constructor(
    private readonly client: Client,
    private readonly direct: DirectCallTransport,
    readonly launched: LaunchedServer,
  ) {}

  /** Connects (MCP initialize) within `timeoutMs`; `onListChanged` hears the server's list_changed notifications. */
  static async connect(launched: LaunchedServer, options: { timeoutMs: number; version: string; onListChanged: () => void }): Promise<UpstreamClient> {
    const client = new Client({ name: "hangar-gateway", version: options.version }, { capabilities: {} });
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => options.onListChanged());
    client.setNotificationHandler(PromptListChangedNotificationSchema, () => options.onListChanged());
    client.setNotificationHandler(ResourceListChangedNotificationSchema, () => options.onListChanged());
    const direct = new DirectCallTransport(launched.transport);
    await client.connect(direct, { timeout: options.timeoutMs });
    return new UpstreamClient(client, direct, launched);
  }

  get serverVersion(): { name: string; version: string } | undefined {
    return this.client.getServerVersion();
  }

  async listManifest(timeoutMs: number): Promise<UpstreamManifest> {
    const caps = this.client.getServerCapabilities() ?? {};
    const opts = { timeout: timeoutMs };
    const tools = caps.tools !== undefined ? await this.pages((cursor) => this.client.request({ method: "tools/list", params: cursor }, ListToolsResultSchema, opts), (r) => r.tools) : [];
    const prompts = caps.prompts !== undefined ? await this.pages((cursor) => this.client.request({ method: "prompts/list", params: cursor }, ListPromptsResultSchema, opts), (r) => r.prompts) : [];
    const resources = caps.resources !== undefined ? await this.pages((cursor) => this.client.request({ method: "resources/list", params: cursor }, ListResourcesResultSchema, opts), (r) => r.resources) : [];
    const resourceTemplates =
      caps.resources !== undefined ? await this.pages((cursor) => this.client.request({ method: "resources/templates/list", params: cursor }, ListResourceTemplatesResultSchema, opts), (r) => r.resourceTemplates) : [];
    return { tools, prompts, resources, resourceTemplates };
  }

  callTool(name: string, args: Record<string, unknown> | undefined, options: UpstreamRequestOptions): Promise<UpstreamResult> {
    return this.direct.request("tools/call", args !== undefined ? { name, arguments: args } : { name }, options);
  }

  getPrompt(name: string, args: Record<string, string> | undefined, options: UpstreamRequestOptions): Promise<UpstreamResult> {
    return this.client.request({ method: "prompts/get", params: { name, ...(args !== undefined ? { arguments: args } : {}) } }, PassThroughResult, this.requestOptions(options));
  }

  readResource(uri: string, options: UpstreamRequestOptions): Promise<UpstreamResult> {
    return this.client.request({ method: "resources/read", params: { uri } }, PassThroughResult, this.requestOptions(options));
  }

  async ping(timeoutMs: number): Promise<void> {
    await this.client.ping({ timeout: timeoutMs });
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => undefined);
  }

  private requestOptions(options: UpstreamRequestOptions): { signal?: AbortSignal; timeout: number; onprogress?: (p: Progress) => void } {
    return { timeout: options.timeoutMs, ...(options.signal !== undefined ? { signal: options.signal } : {}), ...(options.onprogress !== undefined ? { onprogress: options.onprogress } : {}) };
  }

  private async pages<R extends { nextCursor?: string | undefined }, T>(fetch: (params: { cursor: string } | undefined) => Promise<R>, items: (r: R) => T[]): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const result = await fetch(cursor !== undefined ? { cursor } : undefined);
      out.push(...items(result));
      cursor = result.nextCursor;
      if (cursor === undefined) break;
    }
    return out;
  }
}
