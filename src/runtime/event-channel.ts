interface Sink<T> {
  event(value: T): void;
  end(): void;
}

/**
 * Fan-out of one event stream to any number of listeners and async iterators. Each
 * iterator buffers from the moment it starts, bounded: past `bufferLimit` the oldest are
 * dropped, so a slow reader never grows memory without limit. close() ends every iterator.
 */
export class EventChannel<T> {
  private readonly sinks = new Set<Sink<T>>();
  private closed = false;

  constructor(private readonly bufferLimit = 10_000) {}

  publish(value: T): void {
    if (this.closed) return;
    for (const sink of [...this.sinks]) sink.event(value);
  }

  /** Returns the unsubscribe function. */
  subscribe(listener: (value: T) => void): () => void {
    const sink: Sink<T> = { event: listener, end: () => undefined };
    this.sinks.add(sink);
    return () => this.sinks.delete(sink);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const sink of [...this.sinks]) sink.end();
    this.sinks.clear();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    const buffer: T[] = [];
    let wake: (() => void) | undefined;
    let ended = this.closed;
    const sink: Sink<T> = {
      event: (value) => {
        buffer.push(value);
        if (buffer.length > this.bufferLimit) buffer.shift();
        wake?.();
      },
      end: () => {
        ended = true;
        wake?.();
      },
    };
    if (!ended) this.sinks.add(sink);
    return {
      next: async (): Promise<IteratorResult<T>> => {
        while (buffer.length === 0 && !ended) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        if (buffer.length > 0) return { value: buffer.shift() as T, done: false };
        return { value: undefined, done: true };
      },
      return: async (): Promise<IteratorResult<T>> => {
        ended = true;
        this.sinks.delete(sink);
        return { value: undefined, done: true };
      },
    };
  }
}
