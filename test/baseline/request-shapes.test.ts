import { describe, expect, it } from "vitest";
import { formatBaseline, formatBaselineDiff, formatEgressRules, parseBaselineText } from "../../src/baseline/index.js";
import {
  buildDriftReport,
  checkRequestShape,
  detectDrift,
  diffBaselines,
  driftFieldNames,
  requestDriftReason,
  DriftWatch,
  freezeBaseline,
  recordBaseline,
  REQUEST_DRIFT_CODES,
  serialiseBaseline,
  toBaselineView,
  toRequestShapeView,
  type Baseline,
  type Drift,
  type Observation,
} from "../../src/core/baseline/index.js";
import { decide, type Attempt, type DecisionContext } from "../../src/core/decision.js";
import { requestShape, shapeEventFields, type RequestFacts } from "../../src/core/request-shape.js";
import { parsePolicyText } from "../../src/policy/index.js";
import { call, event, obs, T0 } from "./support/observations.js";

const AT = new Date("2025-03-02T09:00:00.000Z");
const HOST = "api.postmarkapp.com";
const HEADERS = ["Host", "Accept", "Content-Type", "Content-Length", "X-Postmark-Server-Token", "User-Agent"];
const EMAIL = { From: "billing@shop.test", To: "alice@example.test", Cc: "accounts@example.test", Subject: "Invoice", HtmlBody: "<p>Hi</p>", Attachments: [{ Name: "a.pdf", Content: "JVBERi0=" }] };
const json = (body: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(body));

const postEmail = (body: unknown = EMAIL, over: Partial<RequestFacts> = {}): RequestFacts => ({ method: "POST", target: "/email", headerNames: HEADERS, contentType: "application/json", body: json(body), ...over });

/** One HTTP request as the sidecar will report it: a decide event carrying the request's shape. */
function request(at: number, facts: RequestFacts, tools: readonly string[] = ["send_email"], name = HOST, port = 443): Observation {
  return obs(event({ at, name, port, tools, method: facts.method, url: facts.target, ...shapeEventFields(requestShape(facts)) }));
}

/** v1 of the postmark-like server: send_email posts an email, list_templates reads a page of templates. */
function v1Run(extra: (at: number) => Observation[] = () => []): Observation[] {
  const out: Observation[] = [];
  for (let i = 0; i < 3; i++) {
    const at = T0 + i * 10_000;
    out.push(call("send_email", at), request(at + 100, postEmail()), ...extra(at + 200));
  }
  out.push(call("list_templates", T0 + 40_000), request(T0 + 40_100, { method: "GET", target: `/templates/${1000 + 7}?count=50&offset=0`, headerNames: HEADERS }, ["list_templates"]));
  return out;
}

const requestDrifts = (drifts: readonly Drift[]): Drift[] => drifts.filter((d) => (REQUEST_DRIFT_CODES as readonly string[]).includes(d.code));

const learn = (observations: Observation[]): Baseline => recordBaseline({ server: "postmark", rateTolerance: 2 }, observations);

describe("request shapes in baselines", () => {
  it("records routes per destination, canonically (golden)", () => {
    const text = serialiseBaseline(freezeBaseline(learn(v1Run()), AT));
    const parsed = JSON.parse(text) as { version: number; destinations: unknown[] };
    expect(parsed.version).toBe(2);
    expect(JSON.stringify(parsed.destinations, null, 2)).toBe(
      JSON.stringify(
        [
          {
            name: HOST,
            port: 443,
            protocols: ["tls"],
            count: 4,
            firstSeen: "2025-03-01T10:00:00.100Z",
            lastSeen: "2025-03-01T10:00:40.100Z",
            bytesUp: 0,
            bytesDown: 0,
            perMinute: { max: 4, p95: 4 },
            tools: ["list_templates", "send_email"],
            requests: [
              {
                method: "POST",
                path: "/email",
                queryKeys: [],
                bodyFields: ["Attachments", "Attachments[].Content", "Attachments[].Name", "Cc", "From", "HtmlBody", "Subject", "To"],
                headerNames: ["accept", "content-type", "user-agent", "x-postmark-server-token"],
                bodies: ["json"],
                count: 3,
                firstSeen: "2025-03-01T10:00:00.100Z",
                lastSeen: "2025-03-01T10:00:20.100Z",
                tools: ["send_email"],
              },
              {
                method: "GET",
                path: "/templates/{n}",
                queryKeys: ["count", "offset"],
                bodyFields: [],
                headerNames: ["accept", "content-type", "user-agent", "x-postmark-server-token"],
                bodies: ["none"],
                count: 1,
                firstSeen: "2025-03-01T10:00:40.100Z",
                lastSeen: "2025-03-01T10:00:40.100Z",
                tools: ["list_templates"],
              },
            ],
          },
        ],
        null,
        2,
      ),
    );
    // Values never reach the file.
    for (const value of ["alice@example.test", "Invoice", "JVBERi0=", "1007", "50"]) expect(text).not.toContain(value);
  });

  it("is byte-identical whatever order requests arrive in, and loads back to the same bytes", () => {
    const observations = v1Run((at) => [request(at, postEmail({ ...EMAIL, ReplyTo: "x@y.test" }, { target: "/email?dry=1" }))]);
    const a = serialiseBaseline(learn(observations));
    const b = serialiseBaseline(learn([...observations].reverse()));
    expect(b).toBe(a);
    const loaded = parseBaselineText(a, "b.json");
    expect(loaded.ok && serialiseBaseline(loaded.baseline)).toBe(a);
  });

  it("keeps a baseline without requests at version 1, and old version-1 files load", () => {
    const noRequests = learn([call("send_email", T0), obs(event({ at: T0 + 1, name: HOST, port: 443, tools: ["send_email"] }))]);
    const text = serialiseBaseline(noRequests);
    expect(JSON.parse(text)).toMatchObject({ version: 1 });
    expect(text).not.toContain("requests");
    const loaded = parseBaselineText(text, "old.json");
    expect(loaded.ok).toBe(true);
  });

  it("rejects request shapes in a version-1 file, duplicate routes and bad paths, with positions", () => {
    const data = JSON.parse(serialiseBaseline(learn(v1Run()))) as { version: number; destinations: { requests: { path: string }[] }[] };
    data.version = 1;
    const [first] = data.destinations;
    first!.requests.push({ ...first!.requests[0]! });
    first!.requests[1]!.path = "templates";
    const result = parseBaselineText(JSON.stringify(data, null, 2), "b.json");
    expect(result.ok).toBe(false);
    const messages = result.ok ? [] : result.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    expect(messages).toEqual(
      expect.arrayContaining([
        'destinations.0.requests: request shapes need "version": 2',
        'destinations.0.requests.1.path: "templates" is not a path template like "/repos/{n}/issues"',
      ]),
    );
  });
});

describe("request drift", () => {
  const v1 = freezeBaseline(learn(v1Run()), AT);

  it("names the tool, the destination and the field: the Bcc attack", () => {
    const bcc = learn(v1Run().map((o) => (o.kind === "event" && o.event.method === "POST" ? request(Date.parse(o.event.ts), postEmail({ ...EMAIL, Bcc: "attacker@evil.test" })) : o)));
    const drifts = detectDrift(v1, bcc);
    expect(drifts.map((d) => [d.code, d.severity, d.subject, d.explanation])).toEqual([
      ["new-request-field", "high", "api.postmarkapp.com:443", "send_email sent body field Bcc to POST api.postmarkapp.com/email, never seen in the baseline"],
    ]);
    expect(drifts[0]!.request).toEqual({ method: "POST", path: "/email", field: { place: "body", name: "Bcc" } });
    const report = buildDriftReport(v1, bcc);
    expect(report.ok).toBe(false);
    expect(report.checks.find((c) => c.subject === "api.postmarkapp.com:443")).toMatchObject({ status: "fail", drifts: ["new-request-field"] });
  });

  it("reports new routes, new query keys and headers, and unreadable bodies where bodies were read", () => {
    const run = v1Run((at) => [
      request(at, { method: "DELETE", target: "/templates/99", headerNames: HEADERS }),
      request(at + 1, { method: "GET", target: "/templates/12?count=5&filter=all", headerNames: [...HEADERS, "X-Exfil"] }, ["list_templates"]),
      request(at + 2, postEmail(EMAIL, { bodyTruncated: true })),
    ]);
    // The extra requests also count as connections (rate drift); only request drift is asserted here.
    const drifts = requestDrifts(detectDrift(v1, learn(run))).map((d) => [d.code, d.explanation]);
    expect(drifts).toEqual([
      ["body-not-inspected", "send_email sent POST api.postmarkapp.com/email with a body Hangar could not inspect; the baseline saw only readable bodies there"],
      ["new-request-field", "list_templates sent header x-exfil to GET api.postmarkapp.com/templates/{n}, never seen in the baseline"],
      ["new-request-field", "list_templates sent query key filter to GET api.postmarkapp.com/templates/{n}, never seen in the baseline"],
      ["new-http-route", "send_email sent DELETE api.postmarkapp.com/templates/{n}, a route the baseline never saw on api.postmarkapp.com:443"],
    ]);
  });

  it("says nothing for the run the baseline was learned from, or on destinations it saw no requests on", () => {
    expect(detectDrift(v1, learn(v1Run()))).toEqual([]);
    const opaque = freezeBaseline(learn([call("send_email", T0), obs(event({ at: T0 + 1, name: HOST, port: 443, tools: ["send_email"] }))]), AT);
    expect(requestDrifts(detectDrift(opaque, learn(v1Run())))).toEqual([]);
  });

  it("checks one request before it is forwarded", () => {
    const view = toRequestShapeView(v1);
    const dest = "api.postmarkapp.com:443";
    expect(checkRequestShape(view, dest, requestShape(postEmail()))).toEqual([]);
    const bcc = checkRequestShape(view, dest, requestShape(postEmail({ ...EMAIL, Bcc: "attacker@evil.test" }), { maxBodyBytes: 64 * 1024 }));
    expect(bcc).toEqual([{ code: "new-request-field", field: { place: "body", name: "Bcc" } }]);
    expect(bcc.map((f) => requestDriftReason(f.code))).toEqual(["drift-new-request-field"]);
    expect(driftFieldNames(bcc)).toEqual(["body Bcc"]);
    expect(checkRequestShape(view, dest, requestShape(postEmail(EMAIL, { contentEncoding: "zstd" })))).toEqual([{ code: "body-not-inspected" }]);
    expect(checkRequestShape(view, dest, requestShape({ method: "POST", target: "/email/batch", headerNames: [] }))).toEqual([{ code: "new-http-route" }]);
    // A request with fewer fields is not drift; a destination without learned requests is not judged by shape.
    expect(checkRequestShape(view, dest, requestShape(postEmail({ From: "a", To: "b" })))).toEqual([]);
    expect(checkRequestShape(view, "other.test:443", requestShape(postEmail({ Bcc: "x" })))).toEqual([]);
  });
});

describe("a baseline widened by hand", () => {
  it("matches routes against globs a reviewer wrote, and still checks their names", () => {
    const recorded = freezeBaseline(learn(v1Run()), AT);
    const widened = {
      ...recorded,
      destinations: recorded.destinations.map((d) => ({ ...d, requests: (d.requests ?? []).map((r) => (r.method === "GET" ? { ...r, path: "/templates/**" } : r)) })),
    };
    const loaded = parseBaselineText(serialiseBaseline(widened), "widened.json");
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.issues));
    const view = toRequestShapeView(freezeBaseline(loaded.baseline, AT));
    const get = (target: string, headerNames = HEADERS) => checkRequestShape(view, "api.postmarkapp.com:443", requestShape({ method: "GET", target, headerNames }));
    expect(get("/templates/welcome-email/versions/latest?count=1")).toEqual([]);
    expect(get("/templates/welcome-email", [...HEADERS, "X-Exfil"])).toEqual([{ code: "new-request-field", field: { place: "header", name: "x-exfil" } }]);
    expect(get("/servers/current")).toEqual([{ code: "new-http-route" }]);
    // A literal "*" sent by the server is not a glob: it stays encoded and matches only itself.
    expect(checkRequestShape(view, "api.postmarkapp.com:443", requestShape({ method: "POST", target: "/*", headerNames: [] }))).toEqual([{ code: "new-http-route" }]);
  });
});

describe("request drift on a live stream", () => {
  it("reports each new field once, even two on the same destination", () => {
    const watch = new DriftWatch(freezeBaseline(learn(v1Run()), AT));
    for (const o of v1Run()) watch.observe(o);
    expect(watch.poll()).toEqual([]);
    watch.observe(request(T0 + 50_000, postEmail({ ...EMAIL, Bcc: "x" })));
    expect(watch.poll().map((d) => d.request?.field?.name)).toEqual(["Bcc"]);
    watch.observe(request(T0 + 51_000, postEmail({ ...EMAIL, Bcc: "x" })));
    watch.observe(request(T0 + 52_000, postEmail({ ...EMAIL, ReplyTo: "y" })));
    expect(watch.poll().map((d) => d.request?.field?.name)).toEqual(["ReplyTo"]);
  });
});

describe("baseline show, diff and to-policy with request shapes", () => {
  it("lists routes with their names in baseline show", () => {
    const text = formatBaseline(freezeBaseline(learn(v1Run()), AT));
    expect(text).toContain(
      [
        "HTTP requests (2 routes; names only, never values)",
        "  api.postmarkapp.com:443 POST /email: 3 requests; from send_email",
        "    body: json; fields Attachments, Attachments[].Content, Attachments[].Name, Cc, From, HtmlBody, Subject, To",
        "    headers: accept, content-type, user-agent, x-postmark-server-token",
        "  api.postmarkapp.com:443 GET /templates/{n}: 1 request; from list_templates",
        "    body: none",
        "    query keys: count, offset",
        "    headers: accept, content-type, user-agent, x-postmark-server-token",
      ].join("\n"),
    );
  });

  it("shows added routes and the names that changed on a route", () => {
    const v1 = freezeBaseline(learn(v1Run()), AT);
    const v2 = freezeBaseline(
      learn(v1Run((at) => [request(at, postEmail({ ...EMAIL, Bcc: "x" })), request(at + 1, { method: "POST", target: "/email/batch", headerNames: ["Content-Type"], contentType: "application/json", body: json([EMAIL]) })])),
      AT,
    );
    const diff = diffBaselines(v1, v2);
    expect(diff.same).toBe(false);
    const text = formatBaselineDiff(diff, { a: "v1.json", b: "v2.json" });
    expect(text.split("\n").slice(text.split("\n").indexOf("requests:"))).toEqual([
      "requests:",
      "  + api.postmarkapp.com:443 POST /email/batch (body json: [].Attachments, [].Attachments[].Content, [].Attachments[].Name, [].Cc, [].From, [].HtmlBody, [].Subject, [].To; headers: content-type; from send_email)",
      "  ~ api.postmarkapp.com:443 POST /email: body fields +Bcc",
      "",
    ]);
    expect(diffBaselines(v1, v1).same).toBe(true);
  });

  it("emits inspect and http routes, ids as *, and the policy loader accepts them", () => {
    const b = freezeBaseline(learn(v1Run()), AT);
    const text = formatEgressRules(b);
    expect(text).toContain(
      ["    - host: api.postmarkapp.com", "      ports: [443]", "      inspect: true", "      http:", '        - { method: POST, path: "/email" }', '        - { method: GET, path: "/templates/*" }', ""].join("\n"),
    );
    const policy = parsePolicyText(["version: 1", "name: postmark", "server:", "  image:", "    ref: hangar-fixture/mail:1", "", text].join("\n"), "pasted.yaml");
    if (!policy.ok) throw new Error(JSON.stringify(policy.issues));
    expect(policy.policy.egress.allow[0]).toMatchObject({ host: HOST, inspect: true, http: [{ method: "POST", path: "/email" }, { method: "GET", path: "/templates/*" }] });
  });

  it("suggests no routes for a host whose other port was never seen as requests", () => {
    const b = learn([...v1Run(), obs(event({ at: T0, name: HOST, port: 8443, tools: ["send_email"] }))]);
    const text = formatEgressRules(b);
    expect(text).toContain("      # requests were seen, but not on port 8443; no http routes are suggested");
    expect(text).not.toContain("http:");
  });
});

describe("credential shapes a baseline saw on a route", () => {
  // The sidecar reports the shape names it found (`aws-access-key`), never the value.
  const withKey = (at: number, facts: RequestFacts, credentials: readonly string[]): Observation =>
    obs(event({ at, name: HOST, port: 443, tools: ["send_email"], method: facts.method, url: facts.target, credentials, ...shapeEventFields(requestShape(facts)) }));
  const learned = (): Baseline =>
    learn([call("send_email", T0), withKey(T0 + 100, postEmail(), ["aws-access-key"]), call("send_email", T0 + 10_000), withKey(T0 + 10_100, postEmail(), [])]);

  it("are recorded per route, by name, and survive the canonical form", () => {
    const text = serialiseBaseline(freezeBaseline(learned(), AT));
    const route = (JSON.parse(text) as { destinations: { requests: { path: string; credentials?: string[] }[] }[] }).destinations[0]!.requests.find((r) => r.path === "/email");
    expect(route?.credentials).toEqual(["aws-access-key"]);
    expect(parseBaselineText(text, "b.json").ok).toBe(true);
    // A route that never carried one has no such field.
    const plain = serialiseBaseline(freezeBaseline(learn(v1Run()), AT));
    expect(plain).not.toContain('"credentials"');
  });

  it("make credential-pattern expected there, and only there, and only for the shapes seen", () => {
    const view = toBaselineView(freezeBaseline(learned(), AT));
    const policy = parsePolicyText(`version: 1\nname: postmark\nserver: { npm: { package: "p", version: "1.0.0" } }\negress:\n  mode: enforcing\n  allow:\n    - { host: ${HOST}, ports: [443], inspect: true }\n`, "p.yaml");
    if (!policy.ok) throw new Error("policy");
    const ctx: DecisionContext = { policy: policy.compiled, mode: "enforcing", baseline: view };
    const attempt = (credentials: string[], target = "/email"): Attempt => ({
      stage: "connect",
      protocol: "http",
      name: HOST,
      port: 443,
      method: "POST",
      target,
      shape: requestShape(postEmail(EMAIL, { target })),
      credentials,
    });
    expect(decide(ctx, attempt(["aws-access-key"])).verdict).toBe("allow");
    expect(decide(ctx, attempt(["github-token"]))).toMatchObject({ verdict: "block", reasons: expect.arrayContaining(["credential-pattern"]) });
    expect(decide(ctx, attempt(["aws-access-key", "github-token"])).reasons).toContain("credential-pattern");
    // Another route of the same destination: not seen there.
    expect(decide(ctx, attempt(["aws-access-key"], "/email/batch")).reasons).toContain("credential-pattern");
    // No baseline: a credential shape is a violation as before.
    expect(decide({ ...ctx, baseline: undefined }, attempt(["aws-access-key"])).reasons).toContain("credential-pattern");
  });
});
