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
 */
export class AuditWriter {
  private queue: AuditEntry[] = [];
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
    if (this.closed) {
      this.logger.error({ kind: entry.kind }, "audit entry after close; dropped");
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
    const batch = this.queue;
    this.queue = [];
    try {
      this.store.appendBatch(batch);
    } catch (err) {
      this.failures += 1;
      this.logger.error({ err, entries: batch.length }, "audit append failed; entries lost");
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
