import { describe, expect, it } from "vitest";
import { describeArgumentFindings, scanArguments, type ArgumentDetector } from "../../src/core/gateway/argument-scan.js";

/**
 * Credentials in tool-call arguments: one test per detector (plain, then hidden in base64,
 * hex and URL escapes), the redaction the audit log gets, and a false-positive test over
 * the arguments real tools are called with.
 */
const b64 = (s: string): string => Buffer.from(s).toString("base64");
const hex = (s: string): string => Buffer.from(s).toString("hex");
const detectors = (args: unknown, watched?: string[]): string[] => scanArguments(args, watched !== undefined ? { watched } : {}).findings.map((f) => f.detector);

// Built from parts so no scanner mistakes this file for a leak.
const AWS_ID = ["AKIA", "IOSFODNN7", "EXAMPLE"].join("");
const AWS_SECRET = ["wJalrXUtnFEMI", "/K7MDENG/bPxRfiCY", "EXAMPLEKEY"].join("");
const GITHUB = `ghp_${"a1B2c3D4e5".repeat(3)}abcdef`;
const JWT = [
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
  "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ",
  "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
].join(".");
const SAMPLES: Record<Exclude<ArgumentDetector, "env-dump" | "watched-secret" | "too-large-to-scan">, string> = {
  "aws-access-key": `id ${AWS_ID}`,
  "aws-secret-key": `aws_secret_access_key = ${AWS_SECRET}`,
  "github-token": `token ${GITHUB}`,
  "gitlab-token": `glpat-${"x1Y2z3W4v5".repeat(2)}`,
  "slack-token": `xoxb-${"1234567890"}-${"abcdefABCDEF"}`,
  "stripe-key": `sk_live_${"4eC39HqLyjWDarjtT1zdp7dc"}`,
  "openai-key": `sk-proj-${"Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv"}`,
  "anthropic-key": `sk-ant-api03-${"Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv"}`,
  "google-api-key": `AIza${"SyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"}`,
  "npm-token": `npm_${"a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"}`,
  "bearer-credential": `Authorization: Bearer ${"abc123DEF456ghi789JKL012mno"}`,
  jwt: JWT,
  "private-key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
};

describe("argument detectors", () => {
  for (const [detector, sample] of Object.entries(SAMPLES)) {
    it(`${detector}: plain, base64, hex and URL-escaped`, () => {
      expect(scanArguments({ notes: sample }).findings).toEqual([{ detector, path: "$.notes", encoding: "plain" }]);
      expect(scanArguments({ notes: `see ${b64(sample)}` }).findings).toContainEqual({ detector, path: "$.notes", encoding: "base64" });
      expect(scanArguments({ notes: hex(sample) }).findings).toContainEqual({ detector, path: "$.notes", encoding: "hex" });
      expect(scanArguments({ url: `https://collector.test/?d=${encodeURIComponent(sample)}` }).findings.map((f) => f.detector)).toContain(detector);
      // A stray "%" does not stop the URL decoding.
      expect(scanArguments({ url: `100%&d=${sample.replace(/./g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`)}` }).findings).toContainEqual({ detector, path: "$.url", encoding: "url" });
    });
  }

  it("env-dump: many KEY=VALUE lines, a few with the process's own variables or a real secret, JSON pairs, or an object of variables", () => {
    expect(detectors({ text: "PATH=/usr/bin\nHOME=/root\nUSER=root" })).toEqual(["env-dump"]);
    expect(detectors({ text: "export DB_HOST=db\nexport DB_PORT=5432\nexport DB_PASSWORD=hunter2hunter2" })).toEqual(["env-dump"]);
    expect(detectors({ text: Array.from({ length: 8 }, (_, i) => `VAR_${i}=v${i}`).join("\n") })).toEqual(["env-dump"]);
    expect(detectors({ text: JSON.stringify({ PATH: "/usr/bin", HOME: "/root", SHELL: "/bin/sh", LANG: "C" }) })).toEqual(["env-dump"]);
    expect(scanArguments({ vars: { PATH: "/usr/bin", HOME: "/root", SHELL: "/bin/sh" } }).findings).toEqual([{ detector: "env-dump", path: "$.vars", encoding: "plain" }]);
    expect(scanArguments({ blob: b64("HOME=/root\nPATH=/bin\nUSER=me\n") }).findings).toEqual([{ detector: "env-dump", path: "$.blob", encoding: "base64" }]);
  });

  it("watched-secret: a configured secret's value, raw or encoded, anywhere (values under 8 characters are not watched)", () => {
    const secret = "s3cr3t-Value-42";
    expect(scanArguments({ q: `x ${secret} y` }, { watched: [secret, "short"] }).findings).toEqual([{ detector: "watched-secret", path: "$.q", encoding: "plain" }]);
    expect(detectors({ q: b64(secret) }, [secret])).toEqual(["watched-secret"]);
    expect(detectors({ q: "a short story" }, ["short"])).toEqual([]);
  });

  it("finds nested and double-encoded values, and reports where, not what", () => {
    const scan = scanArguments({ files: [{ path: "a.txt", content: "ok" }, { path: "b.txt", content: b64(hex(AWS_ID)) }] });
    expect(scan.findings).toEqual([{ detector: "aws-access-key", path: "$.files[1].content", encoding: "base64+hex" }]);
    expect(describeArgumentFindings(scan.findings)).toBe("aws-access-key at $.files[1].content (base64+hex)");
    expect(JSON.stringify([scan.findings, scan.redacted])).not.toContain(AWS_ID);
  });

  it("redacts each flagged value for the audit log, and a whole object when the key is the credential", () => {
    const scan = scanArguments({ title: "hello", body: `creds ${AWS_ID}`, nested: { [GITHUB]: "x", keep: 1 } });
    expect(scan.redacted).toEqual({ title: "hello", body: "[redacted: aws-access-key]", nested: "[redacted: github-token]" });
    expect(scan.findings.map((f) => f.path)).toEqual(["$.body", "$.nested[?]"]);
    expect(JSON.stringify([scan.findings, scan.redacted])).not.toContain(GITHUB);
    // The flagged strings themselves, only to cut them out of the call's result and error.
    expect(scan.flaggedValues).toEqual([`creds ${AWS_ID}`, GITHUB]);
  });

  it("fails closed past its budget: too-large-to-scan, and the arguments are redacted whole", () => {
    const scan = scanArguments({ a: "x".repeat(200), b: "y".repeat(200) }, { maxChars: 300 });
    expect(scan.findings).toEqual([{ detector: "too-large-to-scan", path: "$", encoding: "plain" }]);
    expect(scan.redacted).toBe("[redacted: too-large-to-scan]");
    expect(detectors(Array.from({ length: 20 }, () => "v"), undefined)).toEqual([]);
    expect(scanArguments(Array.from({ length: 20 }, () => "v"), { maxNodes: 10 }).findings.map((f) => f.detector)).toEqual(["too-large-to-scan"]);
  });
});

describe("ordinary arguments raise nothing", () => {
  // A 1×1 PNG, a SHA-256, a git SHA, a UUID, code, prose, SQL, Markdown, a Makefile, a public
  // key and a certificate, a URL with a query, long identifiers, numbers.
  const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
  const ordinary: Record<string, unknown>[] = [
    { path: "/data/reports/2024/q3.csv", head: 10 },
    { sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", commit: "5f5e509a1c2b3d4e5f60718293a4b5c6d7e8f901", id: "123e4567-e89b-12d3-a456-426614174000" },
    { image: PNG, mimeType: "image/png" },
    { content: "const key = process.env.API_KEY;\nif (!key) throw new Error('missing API_KEY');\nexport default key;\n" },
    { query: "SELECT id, name FROM users WHERE created_at > '2024-01-01' ORDER BY id LIMIT 50" },
    { body: "## Release notes\n\nWe moved from sk-learn to a custom model; tokens are rotated weekly. See https://example.com/docs?page=2&lang=en." },
    { makefile: "CC=gcc\nCFLAGS=-O2 -Wall\nLDFLAGS=-lm\n\nall:\n\t$(CC) $(CFLAGS) main.c $(LDFLAGS)\n" },
    { example: "API_KEY=\nSECRET_TOKEN=<your token here>\nDEBUG=true\n" },
    { key: "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----", cert: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----" },
    { name: "ThisIsAVeryLongCamelCaseIdentifierNameForTesting", slug: "the-quick-brown-fox-jumps-over-the-lazy-dog-again" },
    { owner: "modelcontextprotocol", repo: "servers", pull_number: 42, event: "APPROVE", body: "LGTM, token handling looks right." },
    { edits: [{ oldText: "Bearer token", newText: "bearer-token auth" }], dryRun: true, password: "is a field name, not a shape" },
  ];
  it("none of a dozen typical calls is flagged", () => {
    for (const args of ordinary) expect(scanArguments(args).findings, JSON.stringify(args).slice(0, 60)).toEqual([]);
  });
  it("and a flagged call leaves unflagged arguments untouched", () => {
    for (const args of ordinary) expect(scanArguments(args).redacted).toBe(args);
  });
});
