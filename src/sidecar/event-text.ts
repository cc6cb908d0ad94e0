/**
 * Pieces for writing event lines without JSON.stringify of a whole object (dns/dns-event.ts,
 * proxy/egress-event.ts): the hot paths build the same text from prebuilt fragments, and
 * their tests compare it, byte for byte, with JSON.stringify of the event object.
 */

// What JSON.stringify writes as is: printable ASCII but the quote and the backslash.
const NEEDS_ESCAPING = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;

/** JSON.stringify(text), without its call for text that needs no escaping (IDs, addresses, names). */
export function quote(text: string): string {
  return NEEDS_ESCAPING.test(text) ? JSON.stringify(text) : `"${text}"`;
}

/** JSON.stringify(list) of a list of strings. */
export function quoteList(list: readonly string[]): string {
  if (list.length === 0) return "[]";
  let out = `[${quote(list[0]!)}`;
  for (let i = 1; i < list.length; i++) out += `,${quote(list[i]!)}`;
  return `${out}]`;
}

/**
 * The members of JSON.stringify(o) without its braces ("" for none), for an object whose values
 * are strings, lists of strings or undefined (anything else is left to JSON.stringify).
 */
export function membersText(o: object): string {
  let out = "";
  for (const key in o) {
    const value: unknown = (o as Record<string, unknown>)[key];
    if (value === undefined) continue;
    const text = typeof value === "string" ? quote(value) : Array.isArray(value) && value.every((x) => typeof x === "string") ? quoteList(value) : JSON.stringify(value);
    if (text === undefined) continue;
    out += `${out.length === 0 ? "" : ","}${quote(key)}:${text}`;
  }
  return out;
}

/** new Date(now).toISOString(), formatting the date and time only once per second. */
export class IsoTimestamps {
  private second = NaN;
  private secondText = "";

  text(now: number): string {
    const t = Math.trunc(now);
    const second = Math.floor(t / 1000);
    if (second !== this.second) {
      this.second = second;
      this.secondText = new Date(second * 1000).toISOString().slice(0, -4);
    }
    const ms = t - second * 1000;
    return `${this.secondText}${ms < 10 ? "00" : ms < 100 ? "0" : ""}${ms}Z`;
  }
}
