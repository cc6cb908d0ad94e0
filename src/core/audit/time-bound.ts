import { HangarError } from "../errors.js";

/**
 * A --since / --until bound: an ISO-8601 date or time ("2025-03-01", "2025-03-01T12:00:00Z",
 * "2025-03-01T12:00:00+02:00") or a duration back from now ("90s", "15m", "2h", "7d", "2w").
 * Returns the bound as ISO-8601 UTC with milliseconds, the form records are stored in, so
 * bounds compare with timestamps as plain strings.
 */
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
const ISO_DATE_OR_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/;

export function parseTimeBound(text: string, nowMs: number): string {
  const relative = /^(\d+)([smhdw])$/.exec(text.trim());
  if (relative !== null) {
    const [, amount, unit] = relative;
    return new Date(nowMs - Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS]).toISOString();
  }
  if (ISO_DATE_OR_TIME.test(text.trim())) {
    const ms = Date.parse(text.trim());
    if (Number.isFinite(ms)) return new Date(ms).toISOString();
  }
  throw new HangarError("HANGAR_USAGE", `${JSON.stringify(text)} is not a time: use ISO-8601 (2025-03-01, 2025-03-01T12:00:00Z) or a duration back from now (15m, 2h, 7d)`);
}
