import { describe, expect, it } from "vitest";
import { parseTimeBound } from "../../src/core/audit/time-bound.js";
import { isHangarError } from "../../src/core/errors.js";

const NOW = Date.parse("2025-03-01T12:00:00.000Z");

describe("parseTimeBound", () => {
  it("accepts ISO dates and times, normalised to stored form", () => {
    expect(parseTimeBound("2025-02-01", NOW)).toBe("2025-02-01T00:00:00.000Z");
    expect(parseTimeBound("2025-02-01T10:30:00Z", NOW)).toBe("2025-02-01T10:30:00.000Z");
    expect(parseTimeBound("2025-02-01T10:30:00+02:00", NOW)).toBe("2025-02-01T08:30:00.000Z");
  });

  it("accepts durations back from now", () => {
    expect(parseTimeBound("90s", NOW)).toBe("2025-03-01T11:58:30.000Z");
    expect(parseTimeBound("15m", NOW)).toBe("2025-03-01T11:45:00.000Z");
    expect(parseTimeBound("2h", NOW)).toBe("2025-03-01T10:00:00.000Z");
    expect(parseTimeBound("7d", NOW)).toBe("2025-02-22T12:00:00.000Z");
  });

  it("refuses anything else with a usage error", () => {
    for (const bad of ["yesterday", "2025-13-45", "15", "-1h", "2025-02-01 10:00"]) {
      try {
        parseTimeBound(bad, NOW);
        expect.unreachable(bad);
      } catch (err) {
        expect(isHangarError(err, "HANGAR_USAGE")).toBe(true);
      }
    }
  });
});
