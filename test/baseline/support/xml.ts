/**
 * A minimal XML 1.0 parser for tests: enough to prove a document is well-formed (one
 * root, matched tags, quoted unique attributes, valid references and characters) and to
 * walk its elements. Throws with an offset on the first problem.
 */
export interface XmlElement {
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: XmlElement[];
  text: string;
}

const NAME = /^[A-Za-z_:][A-Za-z0-9_.:-]*/;
// eslint-disable-next-line no-control-regex
const BAD_CHAR = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/;
const ENTITIES: Readonly<Record<string, string>> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decode(raw: string, at: number): string {
  if (BAD_CHAR.test(raw)) throw new Error(`character not allowed in XML near offset ${at}`);
  return raw.replace(/&([^;]*);?/g, (whole, ref: string) => {
    if (!whole.endsWith(";")) throw new Error(`unterminated reference near offset ${at}`);
    if (ref in ENTITIES) return ENTITIES[ref]!;
    const num = /^#(\d+)$/.exec(ref)?.[1] ?? (/^#x([0-9a-fA-F]+)$/.exec(ref)?.[1] !== undefined ? String(parseInt(ref.slice(2), 16)) : undefined);
    if (num === undefined) throw new Error(`unknown reference &${ref}; near offset ${at}`);
    const char = String.fromCodePoint(Number(num));
    if (BAD_CHAR.test(char)) throw new Error(`reference to a character XML forbids near offset ${at}`);
    return char;
  });
}

export function parseXml(source: string): XmlElement {
  let pos = 0;
  const fail = (why: string): never => {
    throw new Error(`${why} at offset ${pos}: ${JSON.stringify(source.slice(pos, pos + 40))}`);
  };
  const skipSpace = (): void => {
    while (pos < source.length && /\s/.test(source[pos]!)) pos++;
  };
  if (source.startsWith("<?xml")) {
    const end = source.indexOf("?>");
    if (end === -1) fail("unterminated XML declaration");
    pos = end + 2;
  }
  skipSpace();

  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  while (pos < source.length) {
    if (source[pos] !== "<") {
      const next = source.indexOf("<", pos);
      const raw = source.slice(pos, next === -1 ? source.length : next);
      const parent = stack.at(-1);
      if (parent === undefined) {
        if (raw.trim() !== "") fail("text outside the root element");
      } else {
        if (raw.includes(">") && raw.includes("]]>")) fail("']]>' in text");
        parent.text += decode(raw, pos);
      }
      pos = next === -1 ? source.length : next;
      continue;
    }
    if (source.startsWith("<!--", pos)) {
      const end = source.indexOf("-->", pos);
      if (end === -1) fail("unterminated comment");
      pos = end + 3;
      continue;
    }
    if (source.startsWith("</", pos)) {
      pos += 2;
      const name = NAME.exec(source.slice(pos))?.[0] ?? fail("bad closing tag");
      pos += name.length;
      skipSpace();
      if (source[pos] !== ">") fail("expected >");
      pos++;
      const open = stack.pop();
      if (open?.name !== name) fail(`closing </${name}> does not match <${open?.name ?? "nothing"}>`);
      continue;
    }
    pos++;
    const name = NAME.exec(source.slice(pos))?.[0] ?? fail("bad tag name");
    pos += name.length;
    const attrs: Record<string, string> = {};
    for (;;) {
      const before = pos;
      skipSpace();
      if (source.startsWith("/>", pos) || source[pos] === ">") break;
      if (pos === before) fail("expected whitespace between attributes");
      const attr = NAME.exec(source.slice(pos))?.[0] ?? fail("bad attribute name");
      pos += attr.length;
      skipSpace();
      if (source[pos] !== "=") fail("expected =");
      pos++;
      skipSpace();
      const quote = source[pos];
      if (quote !== '"' && quote !== "'") fail("attribute value must be quoted");
      const end = source.indexOf(quote!, pos + 1);
      if (end === -1) fail("unterminated attribute value");
      const raw = source.slice(pos + 1, end);
      if (raw.includes("<")) fail("'<' in attribute value");
      if (attr in attrs) fail(`duplicate attribute ${attr}`);
      attrs[attr] = decode(raw, pos);
      pos = end + 1;
    }
    const element: XmlElement = { name, attrs, children: [], text: "" };
    const parent = stack.at(-1);
    if (parent !== undefined) parent.children.push(element);
    else if (root === undefined) root = element;
    else fail("a second root element");
    if (source.startsWith("/>", pos)) pos += 2;
    else {
      pos++;
      stack.push(element);
    }
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.at(-1)!.name}>`);
  if (root === undefined) throw new Error("no root element");
  return root;
}

export function* walk(element: XmlElement): Generator<XmlElement> {
  yield element;
  for (const child of element.children) yield* walk(child);
}
