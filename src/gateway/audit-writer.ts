import type { Logger } from "pino";
import type { AuditStore } from "../audit/audit-store.js";
import type { AuditEntry } from "../core/audit/audit-record.js";

/**
 * Group commit for the gateway: entries queue up and are appended in one transaction
 * (appendBatch) every `flushIntervalMs` (default 10 ms) or every `maxBatch` entries, so a
 * busy gateway pays SQLite's commit cost once per batch rather than once per call, and
 * never while a client waits for its answer. The price: a crash of the gateway process
 * loses at most the last interval's records (a power loss may lose more; see the audit
 * README on synchronous=NORMAL). A failed append is logged and counted; the calls
 * themselves are not failed by it.
 *
 * writeDeferred queues a builder instead of an entry: it runs when its batch is appended,
 * in queue order, so the work of building a record (a tool call's redaction and result
 * summary) is not done while the client waits for its answer either.
 */
export type DeferredEntry = () => AuditEntry;

export class AuditWriter {
  private queue: (AuditEntry | DeferredEntry)[] = [];
  private scheduled: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;

  constructor(
    private readonly store: AuditStore,
    private readonly logger: Logger,
    private readonly maxBatch = 1000,
    private readonly flushIntervalMs = 10,
  ) {}

  get path(): string {
    return this.store.path;
  }

  /** Appends failed this many times (each a whole batch). */
  get failedBatches(): number {
    return this.failures;
  }

  write(entry: AuditEntry): void {
    this.enqueue(entry);
  }

  /**
   * Queues `build`, called once when its batch is appended (or on flush). It must capture
   * only values nobody changes in the meantime. A builder that throws is logged, and its
   * place in the log holds an `audit-entry-failed` record instead.
   */
  writeDeferred(build: DeferredEntry): void {
    this.enqueue(build);
  }

  private enqueue(entry: AuditEntry | DeferredEntry): void {
    if (this.closed) {
      this.logger.error({ kind: typeof entry === "function" ? "deferred" : entry.kind }, "audit entry after close; dropped");
      return;
    }
    this.queue.push(entry);
    if (this.queue.length >= this.maxBatch) this.flush();
    else if (this.scheduled === undefined) {
      this.scheduled = setTimeout(() => this.flush(), this.flushIntervalMs);
      this.scheduled.unref();
    }
  }

  /** Appends everything queued now (synchronously). */
  flush(): void {
    if (this.scheduled !== undefined) {
      clearTimeout(this.scheduled);
      this.scheduled = undefined;
    }
    if (this.queue.length === 0 || this.store.closed) return;
    const batch = this.queue.map((entry) => (typeof entry === "function" ? this.build(entry) : entry));
    this.queue = [];
    try {
      this.store.appendBatch(batch);
    } catch (err) {
      this.failures += 1;
      this.logger.error({ err, entries: batch.length }, "audit append failed; entries lost");
    }
  }

  private build(deferred: DeferredEntry): AuditEntry {
    try {
      return deferred();
    } catch (err) {
      this.logger.error({ err }, "building an audit entry failed; recorded as audit-entry-failed");
      return { kind: "policy", data: { action: "audit-entry-failed", detail: { error: err instanceof Error ? err.message : String(err) } } };
    }
  }

  /** Flushes, then closes the store (which signs a final checkpoint). Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.store.close();
  }
}
