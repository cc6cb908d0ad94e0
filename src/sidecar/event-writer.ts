import type { EventSink, SidecarEvent } from "../core/events.js";

/**
 * The sidecar's event stream, written as JSON lines in batches, a write every few ms
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

/**
 * A sink that also takes an event as its JSON text, built by a hot path from prebuilt
 * fragments (dns/dns-event.ts). Only the writer itself offers it: a sink that must see the
 * object (the redacting one) does not, and then the hot path hands it the object.
 */
export interface EncodedEventSink extends EventSink {
  emitEncoded(json: string): void;
}

export function takesEncodedEvents(sink: EventSink): sink is EncodedEventSink {
  return typeof (sink as Partial<EncodedEventSink>).emitEncoded === "function";
}

const DEFAULT_MAX_BUFFERED_CHARS = 64 * 1024;
/**
 * How long a batch may wait. A request at a time (one client, keep-alive) spans two turns,
 * its decide and its close, so a flush per turn was two writes per request; a few ms
 * gathers the events of many requests into one write.
 */
const FLUSH_DELAY_MS = 3;

export class EventWriter implements EncodedEventSink {
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
    this.schedule = options.schedule ?? ((fn) => void setTimeout(fn, FLUSH_DELAY_MS));
  }

  emit(event: SidecarEvent): void {
    this.emitEncoded(JSON.stringify(event));
  }

  /** An event already encoded: `json` must be exactly JSON.stringify of the event (see EncodedEventSink). */
  emitEncoded(json: string): void {
    this.pending += `${json}\n`;
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
