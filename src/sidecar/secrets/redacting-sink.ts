import type { EventSink, SidecarEvent } from "../../core/events.js";
import type { SecretWatch } from "../../core/secrets/secret-watch.js";

/**
 * Every event the sidecar emits passes here on its way out: a field that carries a watched
 * secret (its value or sentinel, in any watched form; a DNS name, a Host, a URL path, an error)
 * is replaced by `[redacted: NAME]`. The events name secrets, never show them.
 */
export class RedactingSink implements EventSink {
  constructor(
    private readonly inner: EventSink,
    private readonly watch: SecretWatch,
  ) {}

  emit(event: SidecarEvent): void {
    this.inner.emit(redactEvent(event, this.watch));
  }
}

export function redactEvent<E extends SidecarEvent>(event: E, watch: SecretWatch): E {
  if (watch.needles.length === 0 || event.type === "lifecycle") return event;
  let out: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(event)) {
    if (typeof value === "string") {
      const hit = carrier(value, watch);
      if (hit !== undefined) (out ??= { ...event })[key] = `[redacted: ${hit}]`;
    } else if (Array.isArray(value) && value.some((v) => typeof v === "string" && carrier(v, watch) !== undefined)) {
      (out ??= { ...event })[key] = value.map((v: unknown) => (typeof v === "string" ? (carrier(v, watch) === undefined ? v : `[redacted: ${carrier(v, watch)!}]`) : v));
    }
  }
  return (out ?? event) as E;
}

/** The name of the secret `text` carries, matched as names are (case-folded, dots dropped). */
function carrier(text: string, watch: SecretWatch): string | undefined {
  if (text.length < 8) return undefined;
  const folded = text.toLowerCase().replaceAll(".", "");
  for (const n of watch.needles) if (folded.includes(n.folded)) return watch.secrets[n.secret]!.name;
  return undefined;
}
