import type { EventSink, SidecarEvent } from "../core/events.js";

/**
 * The sidecar's event stream, written as JSON lines with one write per event-loop turn
 * rather than one per event: a write to a pipe is a system call, and on the hot path two
 * events per request made those calls a third of the sidecar's CPU. Lines keep their order.
 *
 * Nothing buffered may be lost: the owner calls close() on the way out (the sidecar's entry
 * point does so in an 'exit' listener, which every process.exit() runs, and writes to a pipe
 * or file are synchronous on Linux). After close() each event is written at once.
 */
export interface LineOutput {
  write(chunk: string): unknown;
}

export interface EventWriterOptions {
  readonly out: LineOutput;
  /** Buffered characters past which a batch is written at once, mid-turn. Default 64 Ki. */
  readonly maxBufferedChars?: number;
  /** Runs the end-of-turn flush. Default setImmediate: after this turn's I/O callbacks. */
  readonly schedule?: (flush: () => void) => void;
}

const DEFAULT_MAX_BUFFERED_CHARS = 64 * 1024;

export class EventWriter implements EventSink {
  private pending = "";
  private scheduled = false;
  private closed = false;
  private readonly out: LineOutput;
  private readonly maxBufferedChars: number;
  private readonly schedule: (flush: () => void) => void;
  private readonly flushScheduled = (): void => {
    this.scheduled = false;
    this.flush();
  };

  constructor(options: EventWriterOptions) {
    this.out = options.out;
    this.maxBufferedChars = options.maxBufferedChars ?? DEFAULT_MAX_BUFFERED_CHARS;
    this.schedule = options.schedule ?? ((fn) => void setImmediate(fn));
  }

  emit(event: SidecarEvent): void {
    this.pending += `${JSON.stringify(event)}\n`;
    if (this.closed || this.pending.length >= this.maxBufferedChars) return this.flush();
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(this.flushScheduled);
  }

  /** Writes every buffered line now, in one write. */
  flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = "";
    this.out.write(batch);
  }

  /** Flushes, and from now on writes each event at once. Idempotent. */
  close(): void {
    this.closed = true;
    this.flush();
  }
}
