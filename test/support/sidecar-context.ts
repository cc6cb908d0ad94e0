import { randomUUID } from "node:crypto";
import { compilePolicy } from "../../src/core/policy/compiled-policy.js";
import { PolicySchema, type PolicyInput, type Mode } from "../../src/core/policy/policy-schema.js";
import { parseIpRange, type IpRange } from "../../src/core/ip.js";
import type { BaselineView, DecisionContext } from "../../src/core/decision.js";
import type { EgressEvent, EventSink, SidecarEvent } from "../../src/core/events.js";
import type { NameResolver, ResolvedName, SidecarContext } from "../../src/sidecar/sidecar-context.js";
import { NameAccounting, type NameAccountingOptions } from "../../src/sidecar/name-accounting.js";
import { silentLogger } from "../../src/log.js";

/** An EventSink that keeps everything, for assertions. */
export class CollectingSink implements EventSink {
  readonly events: SidecarEvent[] = [];
  emit(event: SidecarEvent): void {
    this.events.push(event);
  }
  egress(): EgressEvent[] {
    return this.events.filter((e): e is EgressEvent => e.type === "dns" || e.type === "egress");
  }
  /** Resolves once an event matching `pred` has been emitted (or rejects after `ms`). */
  async waitFor(pred: (e: EgressEvent) => boolean, ms = 5000): Promise<EgressEvent> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.egress().find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no matching event within ${ms}ms; saw ${JSON.stringify(this.events)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** A resolver backed by a fixed map, standing in for upstream DNS. */
export class StaticResolver implements NameResolver {
  readonly asked: string[] = [];
  readonly peeked: string[] = [];
  /** `held`: peek() answers from the table too, as the sidecar's ledger does for a fresh entry. */
  constructor(
    private readonly table: Record<string, string[]>,
    private readonly held = false,
  ) {}
  peek(name: string): ResolvedName | undefined {
    const ips = this.held ? this.table[name] : undefined;
    if (ips === undefined) return undefined;
    this.peeked.push(name);
    return { name, ips, expiresAt: Date.now() + 60_000 };
  }
  async resolve(name: string): Promise<ResolvedName> {
    this.asked.push(name);
    const ips = this.table[name];
    if (ips === undefined) throw new Error(`StaticResolver: no entry for ${name}`);
    return { name, ips, expiresAt: Date.now() + 60_000 };
  }
}

export function testPolicy(partial: Omit<PolicyInput, "version" | "server"> & { server?: PolicyInput["server"] }) {
  return compilePolicy(
    PolicySchema.parse({ version: 1, server: { npm: { package: "fixture", version: "1.0.0" } }, ...partial }),
  );
}

export interface TestContextOptions {
  policy: PolicyInput["egress"];
  name?: string;
  mode?: Mode;
  trusted?: string[];
  baseline?: BaselineView;
  resolver?: NameResolver;
  accounting?: Omit<NameAccountingOptions, "now">;
}

export type TestContext = SidecarContext & { sink: CollectingSink; setDecision(ctx: DecisionContext): void };

export function testContext(options: TestContextOptions): TestContext {
  const policy = testPolicy({ name: options.name ?? "fixture", egress: options.policy });
  const trustedRanges = (options.trusted ?? []).map((c) => parseIpRange(c) as IpRange);
  let decision: DecisionContext = {
    policy,
    mode: options.mode ?? policy.mode,
    trustedRanges,
    ...(options.baseline ? { baseline: options.baseline } : {}),
  };
  const sink = new CollectingSink();
  // Reads ctx.now on every call, so a test that swaps the clock afterwards moves the account too.
  const ctx: TestContext = {
    server: policy.name,
    decisionContext: () => decision,
    setDecision: (next) => {
      decision = next;
    },
    events: sink,
    sink,
    resolver: options.resolver ?? new StaticResolver({}),
    names: new NameAccounting({ now: () => ctx.now(), ...options.accounting }),
    logger: silentLogger(),
    now: () => Date.now(),
    newId: () => randomUUID(),
  };
  return ctx;
}
