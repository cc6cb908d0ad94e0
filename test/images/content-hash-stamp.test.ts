import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { contentHash, type HashInput } from "../../src/images/content-hash.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tree(): { root: string; inputs: HashInput[]; stampFile: string } {
  const root = mkdtempSync(join(tmpdir(), "hangar-hash-"));
  dirs.push(root);
  mkdirSync(join(root, "dist/sub"), { recursive: true });
  for (let i = 0; i < 40; i++) writeFileSync(join(root, "dist", i % 2 ? "sub" : "", `f${i}.js`), `export const v = ${i};\n`);
  return { root, inputs: [{ kind: "text", name: "Dockerfile", value: "FROM x" }, { kind: "tree", name: "dist", dir: join(root, "dist") }], stampFile: join(root, "stamp/stamp.json") };
}

describe("contentHash with a stamp file", () => {
  it("gives the same hash as without one, and reuses it while no file changed", async () => {
    const { inputs, stampFile } = tree();
    const plain = await contentHash(inputs);
    expect(await contentHash(inputs, { stampFile })).toBe(plain);
    // Proof that the second call reads the stamp instead of the files: a doctored hash comes back.
    const stamp = JSON.parse(readFileSync(stampFile, "utf8")) as { stamp: string; hash: string };
    writeFileSync(stampFile, JSON.stringify({ ...stamp, hash: "reused" }));
    expect(await contentHash(inputs, { stampFile })).toBe("reused");
  });

  it("a file rewritten with the same size and its old mtime restored still changes the hash (ctime)", async () => {
    const { root, inputs, stampFile } = tree();
    const before = await contentHash(inputs, { stampFile });
    const file = join(root, "dist/f0.js");
    const { atime, mtime } = statSync(file);
    await new Promise((r) => setTimeout(r, 20));
    writeFileSync(file, "export const v = 9;\n");
    utimesSync(file, atime, mtime);
    const after = await contentHash(inputs, { stampFile });
    expect(after).not.toBe(before);
    expect(after).toBe(await contentHash(inputs));
  });

  it("a changed text input (the base image id) is a new stamp too", async () => {
    const { inputs, stampFile } = tree();
    await contentHash(inputs, { stampFile });
    const other: HashInput[] = [{ kind: "text", name: "Dockerfile", value: "FROM y" }, inputs[1]!];
    expect(await contentHash(other, { stampFile })).toBe(await contentHash(other));
  });
});
