import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { matchesSelector, hangarLabels, selectorTerms } from "../../src/docker/labels.js";
import { StdioDemuxer } from "../../src/docker/stdio-demuxer.js";
import { npmEntrypoint } from "../../src/images/server-image-builder.js";
import { productionPackagePaths } from "../../src/images/production-modules.js";
import { parseSri, sriAgree, sriOf } from "../../src/images/sri.js";
import { EventChannel } from "../../src/runtime/event-channel.js";
import { readLines } from "../../src/runtime/json-lines.js";
import { asSidecarEvent } from "../../src/runtime/sandbox-events.js";

const frame = (type: number, text: string): Buffer => {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
};

const collect = (stream: NodeJS.ReadableStream): Promise<string> =>
  new Promise((resolve) => {
    let text = "";
    stream.on("data", (c: Buffer) => (text += c.toString("utf8")));
    stream.on("end", () => resolve(text));
  });

describe("stdio demuxer", () => {
  it("splits Docker's multiplexed frames into stdout and stderr, whatever the chunking", async () => {
    const wire = Buffer.concat([frame(1, '{"jsonrpc":"2.0"}\n'), frame(2, "log line\n"), frame(1, "second\n"), frame(0, "echo")]);
    for (const size of [1, 3, 8, 9, wire.length]) {
      const demux = new StdioDemuxer();
      const out = collect(demux.stdout);
      const err = collect(demux.stderr);
      for (let i = 0; i < wire.length; i += size) demux.write(wire.subarray(i, i + size));
      demux.end();
      expect(await out).toBe('{"jsonrpc":"2.0"}\nsecond\n');
      expect(await err).toBe("log line\n");
    }
  });
});

describe("event lines", () => {
  it("yields complete lines across chunks and drops an oversized line whole", async () => {
    const input = new PassThrough();
    const lines: string[] = [];
    const oversize: number[] = [];
    readLines(input, (l) => lines.push(l), { maxLine: 10, onOversize: (n) => oversize.push(n) });
    input.write("ab");
    input.write("c\r\nthis line is far too long");
    input.write(" still\nok\n\n");
    input.end();
    await new Promise((r) => setImmediate(r));
    expect(lines).toEqual(["abc", "ok"]);
    expect(oversize).toHaveLength(1);
  });

  it("accepts only objects with the event envelope", () => {
    expect(asSidecarEvent({ v: 1, ts: "t", type: "lifecycle", server: "s", action: "started" })).toBeDefined();
    expect(asSidecarEvent({ v: 2, ts: "t", type: "lifecycle", server: "s" })).toBeUndefined();
    expect(asSidecarEvent({ v: 1, ts: "t", type: "runtime", server: "s" })).toBeUndefined();
    expect(asSidecarEvent("x")).toBeUndefined();
  });
});

describe("event channel", () => {
  it("fans out to listeners and iterators, bounds each iterator's buffer, and ends them on close", async () => {
    const channel = new EventChannel<number>(3);
    const seen: number[] = [];
    const unsubscribe = channel.subscribe((n) => seen.push(n));
    const iterator = channel[Symbol.asyncIterator]();
    for (const n of [1, 2, 3, 4, 5]) channel.publish(n);
    unsubscribe();
    channel.publish(6);
    channel.close();
    channel.publish(7);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    const got: number[] = [];
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) got.push(r.value);
    expect(got).toEqual([4, 5, 6]);
  });
});

describe("labels", () => {
  it("marks every object with managed, server, role and run, and selects by them", () => {
    const labels = hangarLabels({ server: "s", role: "sidecar", run: "r", creator: { uid: "1000", user: "ann" }, stateDir: "/home/ann/.hangar" }, { extra: "1", "hangar.managed": "false" });
    expect(labels).toEqual({
      extra: "1",
      "hangar.managed": "true",
      "hangar.server": "s",
      "hangar.role": "sidecar",
      "hangar.run": "r",
      "hangar.uid": "1000",
      "hangar.user": "ann",
      "hangar.state-dir": "/home/ann/.hangar",
    });
    // By default the creator is this process's user.
    expect(hangarLabels({ server: "s", role: "sidecar", run: "r" })).toMatchObject({ "hangar.uid": expect.any(String), "hangar.user": expect.any(String) });
    expect(selectorTerms({ server: "s" })).toEqual(["hangar.managed=true", "hangar.server=s"]);
    expect(matchesSelector(labels, { run: "r" })).toBe(true);
    expect(matchesSelector(labels, { run: "other" })).toBe(false);
  });
});

describe("npm helpers", () => {
  it("compares integrity on shared algorithms and says when there is none", () => {
    const bytes = Buffer.from("package bytes");
    const sha512 = sriOf(bytes, "sha512");
    const sha256 = sriOf(bytes, "sha256");
    expect(sriAgree(sha512, `${sha256} ${sha512}`)).toBe(true);
    expect(sriAgree(sha512, sriOf(Buffer.from("other"), "sha512"))).toBe(false);
    expect(sriAgree(sha256, sha512)).toBeUndefined();
    expect(parseSri("md5-xyz sha384-AAAA")).toEqual([{ algorithm: "sha384", digest: "AAAA" }]);
  });

  it("resolves the entry point from the package's bin", () => {
    expect(npmEntrypoint("@scope/srv", { bin: "./dist/index.js" })).toEqual(["node", "/app/node_modules/@scope/srv/dist/index.js"]);
    expect(npmEntrypoint("@scope/srv", { bin: { "srv-cli": "cli.js" } })).toEqual(["node", "/app/node_modules/@scope/srv/cli.js"]);
    expect(npmEntrypoint("@scope/srv", { bin: { other: "o.js", srv: "s.js" } })).toEqual(["node", "/app/node_modules/@scope/srv/s.js"]);
    expect(() => npmEntrypoint("srv", { bin: { a: "a.js", b: "b.js" } })).toThrow(/several bins \(a, b\).*server\.command/);
    expect(() => npmEntrypoint("srv", {})).toThrow(/no bin/);
  });

  it("picks production packages from a lockfile, outermost paths only", () => {
    const lock = JSON.stringify({
      packages: {
        "": { name: "root" },
        "node_modules/a": {},
        "node_modules/a/node_modules/b": {},
        "node_modules/vitest": { dev: true },
        "node_modules/opt": { devOptional: true },
        "node_modules/linked": { link: true },
      },
    });
    expect(productionPackagePaths(lock)).toEqual(["node_modules/a", "node_modules/opt"]);
  });
});
