import { describe, expect, it } from "vitest";
import { IsoTimestamps, membersText, quote, quoteList } from "../../src/sidecar/event-text.js";

describe("event-text: JSON pieces without JSON.stringify, the same text", () => {
  it("quotes every UTF-16 code unit, alone and inside text, as JSON.stringify does", () => {
    for (let c = 0; c <= 0xffff; c++) {
      const ch = String.fromCharCode(c);
      expect(quote(ch)).toBe(JSON.stringify(ch));
      expect(quote(`a${ch}b`)).toBe(JSON.stringify(`a${ch}b`));
    }
    for (const text of ["", "6f1c2a4e-0b7d-4c57-9a51-0f6a1d2c3b4e", "/send?to&cc", "\ud83d\ude00", "\ud800x", 'q"b\\s']) expect(quote(text)).toBe(JSON.stringify(text));
  });

  it("writes lists and objects of strings as JSON.stringify does, undefined members left out, anything else handed to it", () => {
    for (const list of [[], ["host"], ["a", 'b"', "\u0001", "é"]]) expect(quoteList(list)).toBe(JSON.stringify(list));
    const objects: object[] = [
      {},
      { pathTemplate: "/", queryKeys: [], headerNames: ["host", "user-agent"], bodyKind: "none", bodyFields: [] },
      { bodyKind: "json", pathTemplate: undefined, bodyFields: ["To", "Bcc"], bodyNotInspected: "too-large" },
      { a: undefined },
      { n: 3, list: [1, "x"], nested: { k: "v" }, nul: null, yes: true },
      { 'we"ird': "\n" },
    ];
    for (const o of objects) expect(`{${membersText(o)}}`).toBe(JSON.stringify(o));
  });

  it("formats timestamps as Date#toISOString does", () => {
    const clock = new IsoTimestamps();
    for (const t of [0, 999, 1000, 1_796_000_000_000.9, 1_796_000_000_007, Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1)]) expect(clock.text(t)).toBe(new Date(t).toISOString());
  });
});
