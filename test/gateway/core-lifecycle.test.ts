import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../src/core/gateway/backoff.js";
import { CircuitBreaker } from "../../src/core/gateway/circuit-breaker.js";
import { IdleTracker } from "../../src/core/gateway/idle-tracker.js";
import { canTransition, Lifecycle, SERVER_STATES } from "../../src/core/gateway/lifecycle.js";
import { isHangarError } from "../../src/core/errors.js";

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe("lifecycle", () => {
  it("allows exactly the documented transitions", () => {
    const allowed = SERVER_STATES.flatMap((from) => SERVER_STATES.filter((to) => canTransition(from, to)).map((to) => `${from}>${to}`));
    expect(allowed.sort()).toEqual(
      ["COLD>STARTING", "COLD>DEAD", "STARTING>READY", "STARTING>DEGRADED", "STARTING>DEAD", "READY>DEGRADED", "READY>COLD", "READY>DEAD", "DEGRADED>STARTING", "DEGRADED>DEAD"].sort(),
    );
  });

  it("walks COLD → STARTING → READY → DEGRADED → STARTING → READY → COLD and records when", () => {
    const lc = new Lifecycle(0);
    const path = ["STARTING", "READY", "DEGRADED", "STARTING", "READY", "COLD"] as const;
    path.forEach((to, i) => expect(lc.transition(to, i + 1, "test")).toMatchObject({ to, at: i + 1 }));
    expect(lc.state).toBe("COLD");
    expect(lc.since).toBe(6);
  });

  it("refuses an illegal transition with a typed error and leaves the state alone", () => {
    const lc = new Lifecycle(0);
    let caught: unknown;
    try {
      lc.transition("READY", 1, "skipping STARTING");
    } catch (err) {
      caught = err;
    }
    expect(isHangarError(caught, "HANGAR_GATEWAY_ILLEGAL_TRANSITION")).toBe(true);
    expect(lc.state).toBe("COLD");
    lc.transition("DEAD", 2, "shutdown");
    expect(() => lc.transition("COLD", 3, "resurrect")).toThrow(/DEAD → COLD/);
  });
});

describe("circuit breaker", () => {
  it("opens after the threshold of consecutive failures, fails fast while open, then lets one trial through", () => {
    const c = clock();
    const b = new CircuitBreaker({ failureThreshold: 3, coolDownMs: 1000, now: c.now });
    expect(b.tryAcquire()).toEqual({ allowed: true, trial: false });
    expect(b.recordFailure()).toBe(false);
    b.recordSuccess(); // a success resets the count
    expect(b.recordFailure()).toBe(false);
    expect(b.recordFailure()).toBe(false);
    expect(b.recordFailure()).toBe(true);
    expect(b.state).toBe("open");
    c.advance(400);
    expect(b.tryAcquire()).toEqual({ allowed: false, state: "open", retryAfterMs: 600, failures: 3 });
    c.advance(600);
    expect(b.state).toBe("half-open");
    expect(b.tryAcquire()).toEqual({ allowed: true, trial: true });
    // Only one trial at a time.
    expect(b.tryAcquire()).toMatchObject({ allowed: false, state: "half-open" });
    b.recordSuccess();
    expect(b.state).toBe("closed");
    expect(b.consecutiveFailures).toBe(0);
  });

  it("re-opens for a full cool-down when the trial fails", () => {
    const c = clock();
    const b = new CircuitBreaker({ failureThreshold: 1, coolDownMs: 1000, now: c.now });
    expect(b.recordFailure()).toBe(true);
    c.advance(1000);
    expect(b.tryAcquire()).toMatchObject({ allowed: true, trial: true });
    expect(b.recordFailure()).toBe(true);
    expect(b.tryAcquire()).toMatchObject({ allowed: false, state: "open", retryAfterMs: 1000 });
  });

  it("gives back an unused trial", () => {
    const c = clock();
    const b = new CircuitBreaker({ failureThreshold: 1, coolDownMs: 10, now: c.now });
    b.recordFailure();
    c.advance(10);
    expect(b.tryAcquire()).toMatchObject({ trial: true });
    b.releaseTrial();
    expect(b.tryAcquire()).toMatchObject({ trial: true });
  });
});

describe("backoff", () => {
  it("doubles from the initial delay up to the maximum, with no jitter at random() = 0.5", () => {
    const opts = { initialMs: 100, maxMs: 1000, random: () => 0.5 };
    expect([1, 2, 3, 4, 5, 10].map((a) => backoffDelay(a, opts))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it("spreads by ±jitter and never exceeds the maximum", () => {
    expect(backoffDelay(1, { initialMs: 100, maxMs: 1000, jitter: 0.2, random: () => 0 })).toBe(80);
    expect(backoffDelay(1, { initialMs: 100, maxMs: 1000, jitter: 0.2, random: () => 1 })).toBe(120);
    expect(backoffDelay(9, { initialMs: 100, maxMs: 1000, jitter: 0.2, random: () => 1 })).toBe(1000);
  });
});

describe("idle tracker", () => {
  it("is idle only with no call in flight and none for idleMs", () => {
    const t = new IdleTracker(1000, 0);
    expect(t.idleAt()).toBe(1000);
    t.callStarted(500);
    expect(t.idleAt()).toBeUndefined();
    expect(t.isIdle(10_000)).toBe(false);
    t.callEnded(2000);
    expect(t.isIdle(2999)).toBe(false);
    expect(t.isIdle(3000)).toBe(true);
  });

  it("never expires when disabled", () => {
    expect(new IdleTracker(0, 0).isIdle(Number.MAX_SAFE_INTEGER)).toBe(false);
  });
});
