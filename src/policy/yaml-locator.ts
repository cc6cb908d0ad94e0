import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair } from "yaml";
import type { IssuePath } from "./policy-issue.js";

/** Where a path points in the YAML source. `found` is false when only an ancestor exists. */
export interface Location {
  readonly line: number;
  readonly col: number;
  readonly found: boolean;
}

/**
 * Maps value paths (as zod reports them) to line:col in the YAML source, and source
 * offsets (as the YAML parser reports them) back to value paths.
 */
export interface YamlLocator {
  /** Position of the value at `path`, or of its key when `target` is "key". */
  at(path: IssuePath, target?: "value" | "key"): Location;
  /** The path of the deepest key or item whose source contains `offset`. */
  pathAt(offset: number): (string | number)[];
  /** The value at `path` as plain data, for messages ("got ..."). */
  valueAt(path: IssuePath): unknown;
  position(offset: number): { line: number; col: number };
}

type AnyNode = Node | null | undefined;

function keyMatches(pair: Pair, segment: string | number): boolean {
  return isScalar(pair.key) && String(pair.key.value) === String(segment);
}

function startOf(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return range?.[0];
}

/** An empty value (`key:` with nothing after it) has a zero-length range; point at its key instead. */
function isEmptyValue(node: unknown): boolean {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return node === null || node === undefined || (isScalar(node) && node.value === null && range !== undefined && range[0] === range[1]);
}

export function createYamlLocator(doc: Document, lines: LineCounter): YamlLocator {
  const deref = (node: AnyNode): AnyNode => (isAlias(node) ? (node.resolve(doc) as AnyNode) : node);
  const position = (offset: number): { line: number; col: number } => lines.linePos(offset);

  const walk = (path: IssuePath): { node: AnyNode; pair?: Pair; depth: number } => {
    let node = deref(doc.contents as AnyNode);
    let pair: Pair | undefined;
    let depth = 0;
    for (const segment of path) {
      if (isMap(node)) {
        const next = node.items.find((p) => keyMatches(p, segment));
        if (next === undefined) break;
        pair = next;
        node = deref(next.value as AnyNode);
      } else if (isSeq(node) && typeof segment === "number" && segment < node.items.length) {
        pair = undefined;
        node = deref(node.items[segment] as AnyNode);
      } else {
        break;
      }
      depth += 1;
    }
    return { node, ...(pair ? { pair } : {}), depth };
  };

  return {
    position,
    at(path, target = "value") {
      const { node, pair, depth } = walk(path);
      const found = depth === path.length;
      const lastIsKey = pair !== undefined && found && path.length > 0;
      let offset: number | undefined;
      if (lastIsKey && (target === "key" || isEmptyValue(node))) offset = startOf(pair.key);
      else if (!isEmptyValue(node)) offset = startOf(node);
      else if (pair !== undefined) offset = startOf(pair.key);
      offset ??= startOf(doc.contents) ?? 0;
      return { ...position(offset), found };
    },
    pathAt(offset) {
      const path: (string | number)[] = [];
      let node = deref(doc.contents as AnyNode);
      const contains = (n: unknown): boolean => {
        const r = (n as { range?: [number, number, number] } | null | undefined)?.range;
        return r !== undefined && offset >= r[0] && offset <= r[2];
      };
      for (;;) {
        if (isMap(node)) {
          const pair = node.items.find((p) => contains(p.key) || contains(p.value));
          if (pair === undefined || !isScalar(pair.key)) break;
          path.push(String(pair.key.value));
          if (contains(pair.key)) break;
          node = deref(pair.value as AnyNode);
        } else if (isSeq(node)) {
          const index = node.items.findIndex((item) => contains(item));
          if (index === -1) break;
          path.push(index);
          node = deref(node.items[index] as AnyNode);
        } else {
          break;
        }
      }
      return path;
    },
    valueAt(path) {
      const { node, depth } = walk(path);
      if (depth !== path.length) return undefined;
      if (node === null || node === undefined) return null;
      return (node as Node).toJSON();
    },
  };
}
