/**
 * Pieces for writing event lines without JSON.stringify of a whole object (dns/dns-event.ts,
 * proxy/egress-event.ts): the hot paths build the same text from prebuilt fragments, and
 * their tests compare it, byte for byte, with JSON.stringify of the event object.
 */

/** JSON.stringify(text), without its call for text that needs no escaping (IDs, addresses, names). */
export function quote(text: string): string {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return JSON.stringify(text);
  }
  return `"${text}"`;
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
