import { LineCounter, parseDocument } from "yaml";
import { splitRef } from "../core/baseline/canonical.js";
import type { DriftSubjectKind } from "../core/baseline/drift.js";
import { createYamlLocator } from "../policy/index.js";

/**
 * Where a drift's subject sits in the baseline file it was compared with: its own entry (a
 * destination, DNS lookup, tool or tunnelling rule) when the baseline has one; else the
 * first entry of the same name (a known host on a new port, a known name asked a new record
 * type); else the section a new entry would join. The file is read as written, so a
 * hand-edited file out of canonical order still points at the right line. JSON is YAML 1.2,
 * so the YAML locator gives positions. Pure.
 */
export interface BaselineSpot {
  readonly line: number;
  readonly column: number;
  /** The JSON path of what was found, e.g. ["destinations", 0], or ["tools"] for a section. */
  readonly path: readonly (string | number)[];
  readonly found: "entry" | "same-name" | "section";
}

export type BaselineLocator = (kind: DriftSubjectKind, subject: string) => BaselineSpot;

const SECTION: Readonly<Record<DriftSubjectKind, string>> = { destination: "destinations", dns: "dns", tool: "tools", tunnelling: "tunnelling" };

type Entry = Readonly<Record<string, unknown>>;

export function createBaselineLocator(text: string): BaselineLocator {
  const lines = new LineCounter();
  const locator = createYamlLocator(parseDocument(text, { lineCounter: lines, prettyErrors: false }), lines);
  const entries = (section: string): readonly Entry[] => {
    const value = locator.valueAt([section]);
    return Array.isArray(value) ? value.map((e: unknown) => (e !== null && typeof e === "object" ? (e as Entry) : {})) : [];
  };
  const spot = (path: readonly (string | number)[], found: BaselineSpot["found"]): BaselineSpot => {
    const { line, col } = locator.at([...path], found === "section" ? "key" : "value");
    return { line, column: col, path, found };
  };

  return (kind, subject) => {
    const section = SECTION[kind];
    const list = entries(section);
    const [name, exact] = matchers(kind, subject);
    const index = list.findIndex(exact);
    if (index !== -1) return spot([section, index], "entry");
    const sameName = name === undefined ? -1 : list.findIndex((e) => e["name"] === name);
    if (sameName !== -1) return spot([section, sameName], "same-name");
    return spot([section], "section");
  };
}

/** The subject's name (for the same-name fallback) and the test for its own entry. */
function matchers(kind: DriftSubjectKind, subject: string): [string | undefined, (e: Entry) => boolean] {
  switch (kind) {
    case "destination": {
      const [name, port] = splitRef(subject);
      return [name, (e) => e["name"] === name && e["port"] === port];
    }
    case "dns": {
      const [name = subject, type] = subject.split(" ");
      return [name, (e) => e["name"] === name && (type === undefined || e["type"] === type)];
    }
    case "tool":
      return [undefined, (e) => e["name"] === subject];
    case "tunnelling":
      return [undefined, (e) => e["rule"] === subject];
  }
}
