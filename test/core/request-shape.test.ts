import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { idPlaceholder, pathTemplate, requestShape, shapeEventFields, shapeFromEvent, type RequestFacts } from "../../src/core/request-shape.js";

const bytes = (body: unknown): Uint8Array => new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body));

/** What a postmark client sends: real header names as Node's http client and fetch write them. */
const POSTMARK_HEADERS = ["Host", "Accept", "Content-Type", "Content-Length", "X-Postmark-Server-Token", "User-Agent", "Connection", "Accept-Encoding"];
const email = {
  From: "billing@shop.test",
  To: "alice@example.test",
  Cc: "accounts@example.test",
  Subject: "Your invoice",
  HtmlBody: "<p>Thanks</p>",
  Attachments: [{ Name: "invoice.pdf", Content: "JVBERi0xLjQK", ContentType: "application/pdf" }],
};
const postEmail = (body: unknown): RequestFacts => ({ method: "POST", target: "/email", headerNames: POSTMARK_HEADERS, contentType: "application/json; charset=utf-8", body: bytes(body) });

describe("request shapes (golden)", () => {
  it("a postmark-like POST /email: field paths, header names, no values", () => {
    const shape = requestShape(postEmail(email));
    expect(shape).toEqual({
      method: "POST",
      path: "/email",
      queryKeys: [],
      headerNames: ["accept", "accept-encoding", "content-type", "user-agent", "x-postmark-server-token"],
      body: "json",
      bodyFields: ["Attachments", "Attachments[].Content", "Attachments[].ContentType", "Attachments[].Name", "Cc", "From", "HtmlBody", "Subject", "To"],
    });
    // Values never survive: not the address, not the token, not the attachment.
    const text = JSON.stringify(shapeEventFields(shape));
    for (const value of ["alice@example.test", "Your invoice", "JVBERi0xLjQK", "invoice.pdf", "billing@shop.test"]) expect(text).not.toContain(value);
  });

  it("the same email plus Bcc differs by exactly one field", () => {
    const v1 = requestShape(postEmail(email));
    const bcc = requestShape(postEmail({ ...email, Bcc: "attacker@evil.test" }));
    expect(bcc.bodyFields.filter((f) => !v1.bodyFields.includes(f))).toEqual(["Bcc"]);
    expect({ ...bcc, bodyFields: v1.bodyFields }).toEqual(v1);
  });

  it("a GitHub-like REST call: numeric ids and long hex become placeholders, query keys sorted", () => {
    const shape = requestShape({
      method: "PATCH",
      target: "/repos/octo-org/hello-world/issues/1347/comments/8f14e45fceea167a5a36dedd4bea2543?per_page=100&page=2&page=3",
      headerNames: ["Authorization", "Accept", "X-GitHub-Api-Version", "Content-Type", "Date", "If-None-Match"],
      contentType: "application/vnd.github+json",
      body: bytes({ body: "Fixed in #1348", labels: { "1024": "bug" }, meta: { reactions: [{ user: { id: 1 } }] } }),
    });
    expect(shape).toEqual({
      method: "PATCH",
      path: "/repos/octo-org/hello-world/issues/{n}/comments/{id}",
      queryKeys: ["page", "per_page"],
      headerNames: ["accept", "authorization", "content-type", "x-github-api-version"],
      body: "json",
      bodyFields: ["body", "labels", "labels.{n}", "meta", "meta.reactions", "meta.reactions[].user", "meta.reactions[].user.id"],
    });
  });

  it("a form body, in absolute form, with a UUID and an API-key-like token in the path", () => {
    const shape = requestShape({
      method: "POST",
      target: "http://auth.example.test/v1/users/550e8400-e29b-41d4-a716-446655440000/tokens/sk_live_4eC39HqLyjWDarjtT1zdp7dc?expand%5B%5D=owner",
      headerNames: ["host", "content-type", "content-length"],
      contentType: "application/x-www-form-urlencoded",
      body: bytes("grant_type=password&username=bob&password=p%40ss&scope=&user%5Bname%5D=Bob+B"),
    });
    expect(shape).toEqual({
      method: "POST",
      path: "/v1/users/{uuid}/tokens/{id}",
      queryKeys: ["expand[]"],
      headerNames: ["content-type"],
      body: "form",
      bodyFields: ["grant_type", "password", "scope", "user[name]", "username"],
    });
  });

  it("a GET without a body", () => {
    expect(requestShape({ method: "GET", target: "/", headerNames: [] })).toEqual({ method: "GET", path: "/", queryKeys: [], headerNames: [], body: "none", bodyFields: [] });
  });
});

describe("bodies that are not inspected", () => {
  const facts = (over: Partial<RequestFacts>): RequestFacts => ({ method: "POST", target: "/email", headerNames: [], contentType: "application/json", body: bytes(email), ...over });
  const why = (over: Partial<RequestFacts>, max?: number): unknown => {
    const s = requestShape(facts(over), max === undefined ? {} : { maxBodyBytes: max });
    return s.body === "not-inspected" ? { fields: s.bodyFields, why: s.bodyNotInspected } : s.body;
  };

  it("marks each reason instead of fields", () => {
    expect(why({ bodyTruncated: true })).toEqual({ fields: [], why: "too-large" });
    expect(why({}, 10)).toEqual({ fields: [], why: "too-large" });
    expect(why({ body: bytes('{"To": "a@b.test", "Bcc"') })).toEqual({ fields: [], why: "unparseable" });
    expect(why({ body: new Uint8Array([0x7b, 0xff, 0x7d]) })).toEqual({ fields: [], why: "unparseable" });
    expect(why({ contentEncoding: "zstd" })).toEqual({ fields: [], why: "compressed" });
    expect(why({ contentEncoding: "gzip" })).toEqual({ fields: [], why: "unparseable" });
    expect(why({ contentType: "application/octet-stream" })).toEqual({ fields: [], why: "unsupported-type" });
    expect(why({ contentType: "multipart/form-data; boundary=x" })).toEqual({ fields: [], why: "unsupported-type" });
    expect(why({ body: bytes("a=1&%zz=2"), contentType: "application/x-www-form-urlencoded" })).toEqual({ fields: [], why: "unparseable" });
  });

  it("decodes gzip, deflate (zlib or raw) and br, and stacked codings, within the bound", () => {
    const plain = requestShape(facts({})).bodyFields;
    const raw = bytes({ ...email, Bcc: "x@evil.test" });
    const withBcc = [...plain, "Bcc"].sort();
    expect(requestShape(facts({ contentEncoding: "gzip", body: gzipSync(raw) })).bodyFields).toEqual(withBcc);
    expect(requestShape(facts({ contentEncoding: "deflate", body: deflateSync(raw) })).bodyFields).toEqual(withBcc);
    expect(requestShape(facts({ contentEncoding: "deflate", body: deflateRawSync(raw) })).bodyFields).toEqual(withBcc);
    expect(requestShape(facts({ contentEncoding: "br", body: brotliCompressSync(raw) })).bodyFields).toEqual(withBcc);
    expect(requestShape(facts({ contentEncoding: "gzip, br", body: brotliCompressSync(gzipSync(raw)) })).bodyFields).toEqual(withBcc);
    // A small bomb: 2 MiB of JSON in a few kilobytes is refused, not expanded past the bound.
    const bomb = gzipSync(bytes({ Bcc: "x".repeat(2 * 1024 * 1024) }));
    expect(bomb.length).toBeLessThan(10_000);
    expect(why({ contentEncoding: "gzip", body: bomb })).toEqual({ fields: [], why: "too-large" });
    expect(why({ contentEncoding: "gzip, gzip, gzip", body: gzipSync(gzipSync(gzipSync(raw))) })).toEqual({ fields: [], why: "compressed" });
  });

  it("refuses bodies too deep or too wide to summarise, without throwing", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = { a: deep };
    expect(why({ body: bytes(deep) })).toEqual({ fields: [], why: "too-complex" });
    const wide = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`field_${i}_x`, 1]));
    expect(why({ body: bytes(wide) })).toEqual({ fields: [], why: "too-complex" });
    expect(why({ body: bytes("[".repeat(100_000)) })).toEqual({ fields: [], why: "unparseable" });
  });

  it("reads an undeclared body as JSON only when it plainly is one", () => {
    expect(requestShape(facts({ contentType: undefined })).body).toBe("json");
    expect(why({ contentType: undefined, body: bytes("hello") })).toEqual({ fields: [], why: "unsupported-type" });
  });
});

describe("templating", () => {
  it("keeps words, templates ids", () => {
    expect(["v1", "users", "release-2024-notes-final", "README.md"].map(idPlaceholder)).toEqual([undefined, undefined, undefined, undefined]);
    expect(["42", "550E8400-E29B-41D4-A716-446655440000", "0123456789abcdef", "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "x".repeat(65)].map(idPlaceholder)).toEqual(["{n}", "{uuid}", "{id}", "{id}", "{id}"]);
  });

  it("keeps literal braces from reading as placeholders, and makes odd bytes visible", () => {
    expect(pathTemplate("/a/{n}/b%20c?x=1#f")).toBe("/a/%7Bn%7D/b%20c");
    expect(pathTemplate("/files/**/x*")).toBe("/files/%2A%2A/x%2A");
    expect(pathTemplate("/a/\u00e9")).toBe("/a/%C3%A9");
    expect(pathTemplate("*")).toBe("*");
    expect(pathTemplate("https://h.test")).toBe("/");
  });

  it("quotes keys that would read as paths, and escapes unprintable ones", () => {
    const s = requestShape({ method: "POST", target: "/", headerNames: [], contentType: "application/json", body: bytes({ "a.b": 1, "c[]": 2, "d e": 3, "": 4, "{n}": 5, "7": 6 }) });
    expect(s.bodyFields).toEqual(['""', '"a.b"', '"c[]"', '"d e"', '"{n}"', "{n}"]);
  });
});

describe("shapes on events", () => {
  it("round-trips through the event fields", () => {
    const shape = requestShape(postEmail(email));
    expect(shapeFromEvent({ method: "POST", ...shapeEventFields(shape) })).toEqual(shape);
  });

  it("ignores events without a shape or with a malformed one", () => {
    expect(shapeFromEvent({ method: "POST" })).toBeUndefined();
    expect(shapeFromEvent({ method: "POST", pathTemplate: "no-slash", bodyKind: "none" })).toBeUndefined();
    expect(shapeFromEvent({ method: "POST", pathTemplate: "/", bodyKind: "json", bodyFields: [7 as unknown as string] })).toBeUndefined();
  });
});
