/**
 * The text patterns the manifest scan looks for, one list per kind of finding. Every pattern
 * is linear (bounded repetitions, no nested quantifiers), so a hostile description of any
 * length costs one pass. Kept apart from the scan so tool results can be checked for the
 * same cues later.
 */
export type CueSeverity = "high" | "medium";

export interface TextCue {
  /** Stable id of the pattern, shown with each finding (e.g. "call-first"). */
  readonly id: string;
  readonly severity: CueSeverity;
  readonly pattern: RegExp;
}

const cue = (id: string, severity: CueSeverity, pattern: RegExp): TextCue => ({ id, severity, pattern });

/** Instructions aimed at the model rather than at a human reader. */
export const INSTRUCTION_CUES: readonly TextCue[] = [
  cue(
    "override-instructions",
    "high",
    /\b(?:ignore|disregard|forget|override|bypass)\s+(?:(?:all|any|the|your|of|these)\s+){0,3}(?:previous|prior|above|earlier|preceding|former|other|existing|system|original)\s+(?:instructions?|prompts?|rules?|directions?|guidelines?|messages?|context|commands?)\b/i,
  ),
  cue(
    "call-first",
    "high",
    /\bbefore\s+(?:using|calling|invoking|running|executing|answering|responding|replying|you\s+(?:use|call|answer|respond|reply))\b[^.\n]{0,80}?\b(?:call|use|invoke|run|execute|read|send|pass|fetch|upload|include)\b/i,
  ),
  cue("must-call", "medium", /\byou\s+(?:must|should|need\s+to|have\s+to)\s+(?:(?:first|always|also)\s+)?(?:call|invoke|execute|send|forward|upload|read)\b/i),
  cue(
    "conceal-from-user",
    "high",
    /\b(?:do\s+not|don['’]t|never|must\s+not|should\s+not|without)\s+(?:tell|telling|inform|informing|notify|notifying|mention|mentioning|reveal|revealing|show|showing|disclose|disclosing|alert|alerting|let|letting)\s+(?:(?:this|it|anything)\s+(?:to\s+)?)?(?:the\s+)?(?:user|human|operator|person)s?\b|\b(?:the\s+)?user\s+(?:must|should)\s+(?:not|never)\s+(?:know|see|notice|be\s+told)\b|\bkeep\s+(?:this|it)\s+(?:secret|hidden|confidential)\b/i,
  ),
  cue("instruction-tag", "high", /<\s*\/?\s*(?:important|system|instructions?|hidden|secret|admin|override|priority)\s*>|\[\s*(?:system|inst|important)\s*\]|<!--/i),
  cue(
    "priority-claim",
    "medium",
    /\b(?:highest|top|maximum|absolute)\s+priority\b|\b(?:takes?|has|have)\s+precedence\s+over\b|\b(?:always|only)\s+use\s+this\s+tool\b|\binstead\s+of\s+(?:any|all|the)\s+other\s+tools?\b|\b(?:prefer|use)\s+this\s+tool\s+(?:over|instead)\b|\boverrides?\s+(?:all|any|every)\s+other\b/i,
  ),
  cue(
    "sensitive-path",
    "high",
    /~\/\.ssh\b|(?<![A-Za-z0-9])id_(?:rsa|dsa|ecdsa|ed25519)(?![A-Za-z0-9])|\.aws\/credentials\b|\/etc\/(?:passwd|shadow)\b|(?:^|[\s'"`(/~])\.env\b|\bmcp\.json\b|(?:^|[\s'"`(/~])\.(?:npmrc|netrc|pgpass)\b|\.git-credentials\b|\.kube\/config\b|\.docker\/config\.json\b/i,
  ),
];

/** Shell fragments: commands a description has no business spelling out. */
export const SHELL_CUES: readonly TextCue[] = [
  cue("download-command", "high", /\b(?:curl|wget)\s+(?:-{1,2}[\w-]+\s+){0,6}['"]?(?:https?:|ftp:|[\w-]+(?:\.[\w-]+)+|\$)/i),
  cue("pipe-to-shell", "high", /\|\s*(?:sudo\s+)?(?:ba|z|da|k|fi)?sh\b/),
  cue("inline-interpreter", "high", /\b(?:(?:ba|z|da)?sh|python3?|node|perl|ruby)\s+-[ce]\s/),
  cue("recursive-delete", "high", /\brm\s+-(?:[a-z]*r[a-z]*f|[a-z]*f[a-z]*r)\b/i),
  cue("command-substitution", "high", /\$\([^()\n]{1,200}\)/),
  cue("backtick-command", "high", /`[^`\n]{0,200}\b(?:curl|wget|bash|sh|nc|ncat|chmod|chown|python3?|perl|base64|eval|sudo)\b[^`\n]{0,200}`/),
  cue("dev-tcp", "high", /\/dev\/(?:tcp|udp)\//),
  cue("netcat", "high", /\b(?:nc|ncat|netcat)\s+(?:-[a-z]+\s+){0,4}[\w.-]+\s+\d{2,5}\b/),
  cue("base64-decode", "high", /\bbase64\s+(?:-d|--decode)\b/),
  cue("chmod-exec", "high", /\bchmod\s+(?:[ugoa]*\+x|0?[0-7]?7[0-7]{2})\b/),
  cue("powershell", "high", /\b(?:powershell|pwsh)(?:\.exe)?\s+-(?:e|enc|encodedcommand|c|command|nop|noprofile|w|windowstyle)\b/i),
  cue("sudo", "medium", /\bsudo\s+[a-z]/),
];

/** URLs a description points the model (or a renderer) at. */
export const URL_CUES: readonly TextCue[] = [
  cue("url", "medium", /\b(?:https?|ftp|wss?|file|gopher|ldap):\/\/[^\s"'<>`)\]]+/i),
  cue("data-uri", "medium", /\bdata:[\w.+-]+\/[\w.+-]+;base64,/i),
  cue("javascript-uri", "high", /\bjavascript:/i),
];

/** Generic talk of other servers' tools; named references are matched per configured peer. */
export const OTHER_SERVER_CUES: readonly TextCue[] = [
  cue(
    "other-servers",
    "medium",
    /\b(?:other|another|different)\s+(?:mcp\s+)?servers?\b|\b(?:tools?|functions?)\s+(?:from|of|on|provided\s+by)\s+(?:other|another|different|any)\s+(?:mcp\s+)?servers?\b|\b(?:all|any|every)\s+other\s+tools?\b/i,
  ),
];

/**
 * Characters a reader does not see: format characters (zero-width, bidirectional controls,
 * tags, soft hyphen, BOM), C0/C1 controls other than tab and line breaks, and variation
 * selectors outside the emoji ones (used to smuggle bytes).
 */
// Controls and lone variation selectors are what this matches, on purpose.
// eslint-disable-next-line no-control-regex, no-misleading-character-class
const HIDDEN = /[\p{Cf}\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\uFE00-\uFE0D\u{E0100}-\u{E01EF}]/gu;
const PICTOGRAPH = /\p{Extended_Pictographic}/u;
const ZWJ = 0x200d;

export interface CueMatch {
  readonly cue: TextCue;
  readonly index: number;
  readonly length: number;
}

/** Every cue of `cues` that matches `text`, each at its first match. */
export function matchCues(text: string, cues: readonly TextCue[]): CueMatch[] {
  const out: CueMatch[] = [];
  for (const c of cues) {
    const m = c.pattern.exec(text);
    if (m !== null) out.push({ cue: c, index: m.index, length: m[0].length });
  }
  return out;
}

/** The first hidden character of `text`, or undefined; a ZWJ inside an emoji sequence is not hidden. */
export function firstHiddenCharacter(text: string): { readonly index: number; readonly codePoint: number; readonly bidi: boolean } | undefined {
  for (const m of text.matchAll(HIDDEN)) {
    const codePoint = m[0].codePointAt(0) as number;
    const index = m.index ?? 0;
    if (codePoint === ZWJ && joinsEmoji(text, index)) continue;
    return { index, codePoint, bidi: isBidiControl(codePoint) };
  }
  return undefined;
}

function joinsEmoji(text: string, at: number): boolean {
  const before = text.slice(Math.max(0, at - 3), at).replace(/\uFE0F$/, "");
  const after = text.slice(at + 1, at + 3);
  return PICTOGRAPH.test(Array.from(before).at(-1) ?? "") && PICTOGRAPH.test(Array.from(after)[0] ?? "");
}

function isBidiControl(cp: number): boolean {
  return cp === 0x061c || cp === 0x200e || cp === 0x200f || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

// eslint-disable-next-line no-control-regex, no-misleading-character-class
const INVISIBLE = /[\p{Cf}\p{Zl}\p{Zp}\u0000-\u001F\u007F-\u009F\uFE00-\uFE0D\u{E0100}-\u{E01EF}]/gu;

/**
 * A short, safe view of `text` around [index, index + length): at most `max` characters,
 * every invisible or control character written as \u{XXXX} (line breaks as \n), "…" where
 * it was cut. Renderers still escape it for their medium.
 */
export function excerpt(text: string, index: number, length: number, max = 80): string {
  const span = Math.min(length, max);
  const room = Math.max(0, max - span);
  const start = Math.max(0, index - Math.floor(room / 2));
  const end = Math.min(text.length, Math.max(index + span, start + max));
  const body = text.slice(start, end).replace(INVISIBLE, (ch) => {
    if (ch === "\n") return "\\n";
    if (ch === "\r") return "\\r";
    if (ch === "\t") return "\\t";
    return `\\u{${(ch.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, "0")}}`;
  });
  return `${start > 0 ? "…" : ""}${body}${end < text.length ? "…" : ""}`;
}
