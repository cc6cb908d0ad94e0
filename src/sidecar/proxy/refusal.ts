import type { Verdict } from "../../core/decision.js";

/**
 * What a refused HTTP client reads: it names Hangar, the destination and the reason codes,
 * never policy internals. Capture (quarantine) says plainly that nothing was sent.
 */
export function refusalText(verdict: Verdict, target: string | undefined): string {
  const where = target ?? "this destination";
  if (verdict.reasons[0] === "capture") {
    return `Hangar quarantine (capture mode): the request to ${where} was recorded and not sent.\n`;
  }
  return `Hangar blocked the request to ${where}: ${verdict.reasons.join(", ")}.\n`;
}

export function refusalHeaders(verdict: Verdict): Record<string, string> {
  return { "X-Hangar-Reasons": verdict.reasons.join(", ") };
}
