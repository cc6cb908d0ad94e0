/**
 * How an HTTP/1.1 message body is framed (RFC 9112 section 6), and a chunked decoder. The
 * request side is strict: every shape two parsers could frame differently (Content-Length
 * with Transfer-Encoding, two Content-Lengths, a coding other than chunked, chunked on
 * HTTP/1.0, a bare LF or a stray byte in the chunk syntax) is malformed, so the sidecar
 * never forwards bytes whose framing an upstream might read another way. The sidecar sends
 * the body on in its own framing: the upstream reads exactly what was decided.
 */
export type BodyFraming =
  | { readonly kind: "none" }
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }
  /** A response that runs until the upstream closes. */
  | { readonly kind: "close" };

export const NO_BODY: BodyFraming = { kind: "none" };
const CHUNKED: BodyFraming = { kind: "chunked" };
const UNTIL_CLOSE: BodyFraming = { kind: "close" };
const DIGITS = /^[0-9]{1,15}$/;

interface FramingFields {
  readonly lengths: string[];
  readonly codings: string[];
}

function framingFields(raw: readonly string[]): FramingFields {
  const lengths: string[] = [];
  const codings: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i]!;
    if (key.length === 14 && key.toLowerCase() === "content-length") lengths.push(raw[i + 1]!);
    else if (key.length === 17 && key.toLowerCase() === "transfer-encoding") codings.push(raw[i + 1]!);
  }
  return { lengths, codings };
}

/** A request's body framing, or undefined when the request is malformed (a smuggling shape). */
export function requestFraming(raw: readonly string[], version: "1.0" | "1.1"): BodyFraming | undefined {
  const { lengths, codings } = framingFields(raw);
  if (codings.length > 0) {
    // Only exactly `chunked`, once, on HTTP/1.1, and never beside a Content-Length.
    if (codings.length !== 1 || lengths.length > 0 || version !== "1.1") return undefined;
    return codings[0]!.toLowerCase() === "chunked" ? CHUNKED : undefined;
  }
  if (lengths.length === 0) return NO_BODY;
  if (lengths.length !== 1 || !DIGITS.test(lengths[0]!)) return undefined;
  const length = Number(lengths[0]);
  return length === 0 ? NO_BODY : { kind: "length", length };
}

/**
 * A response's body framing for a request of `method`, or undefined when the upstream's
 * framing cannot be trusted (two different lengths, a length that is not a number).
 */
export function responseFraming(status: number, raw: readonly string[], method: string): BodyFraming | undefined {
  if (method === "HEAD" || status < 200 || status === 204 || status === 304) return NO_BODY;
  const { lengths, codings } = framingFields(raw);
  if (codings.length > 0) {
    const last = codings[codings.length - 1]!;
    return last.slice(last.lastIndexOf(",") + 1).trim().toLowerCase() === "chunked" ? CHUNKED : UNTIL_CLOSE;
  }
  if (lengths.length === 0) return UNTIL_CLOSE;
  // One field with one value (nearly every response) needs no list of values.
  const only = lengths.length === 1 && !lengths[0]!.includes(",") ? lengths[0]!.trim() : sameValue(lengths);
  if (only === undefined || !DIGITS.test(only)) return undefined;
  const length = Number(only);
  return length === 0 ? NO_BODY : { kind: "length", length };
}

/** The one value that a list of Content-Length fields repeats (`5, 5` is 5), or undefined. */
function sameValue(lengths: readonly string[]): string | undefined {
  const values = new Set(lengths.flatMap((l) => l.split(",").map((v) => v.trim())));
  return values.size === 1 ? [...values][0] : undefined;
}

const enum State {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  Trailer,
  TrailerLf,
  EndLf,
  Done,
  Failed,
}

const MAX_SIZE_DIGITS = 13; // 2^52: no chunk is larger than a Number counts exactly
const MAX_LINE = 4096;
const MAX_TRAILER_BYTES = 16 * 1024;

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  return -1;
}

/**
 * A chunked body, read incrementally. `push` hands each run of data bytes to `onData` (when
 * given) and returns how many bytes of `chunk` belong to the body: all of them, or fewer
 * once the last chunk and its trailers ended (what follows is the next message), or -1 when
 * the framing is malformed. Trailers are read and dropped.
 */
export class ChunkedDecoder {
  private state = State.Size;
  private remaining = 0;
  private digits = 0;
  private line = 0;
  private trailerBytes = 0;
  /** Data bytes seen so far (the body without its framing). */
  dataBytes = 0;

  get done(): boolean {
    return this.state === State.Done;
  }

  get failed(): boolean {
    return this.state === State.Failed;
  }

  push(chunk: Buffer, onData?: (data: Buffer) => void): number {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.state) {
        case State.Data: {
          const take = Math.min(this.remaining, n - i);
          this.dataBytes += take;
          if (onData !== undefined) onData(chunk.subarray(i, i + take));
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = State.DataCr;
          continue;
        }
        case State.Done:
          return i;
        case State.Failed:
          return -1;
        default:
          break;
      }
      const byte = chunk[i++]!;
      if (!this.step(byte)) {
        this.state = State.Failed;
        return -1;
      }
      if ((this.state as State) === State.Done) return i;
    }
    return n;
  }

  /** One byte of the chunk syntax; false when it is malformed. */
  private step(byte: number): boolean {
    switch (this.state) {
      case State.Size: {
        const h = hexValue(byte);
        if (h !== -1) {
          if (++this.digits > MAX_SIZE_DIGITS) return false;
          this.remaining = this.remaining * 16 + h;
          return true;
        }
        if (this.digits === 0) return false;
        if (byte === 0x3b) {
          this.state = State.Ext;
          this.line = 0;
          return true;
        }
        if (byte === 0x0d) {
          this.state = State.SizeLf;
          return true;
        }
        return false;
      }
      case State.Ext:
        // A chunk extension: visible ASCII, space and tab, ignored; never a bare CR or LF.
        if (byte === 0x0d) {
          this.state = State.SizeLf;
          return true;
        }
        return ++this.line <= MAX_LINE && (byte === 0x09 || (byte >= 0x20 && byte <= 0x7e));
      case State.SizeLf:
        if (byte !== 0x0a) return false;
        this.digits = 0;
        if (this.remaining === 0) {
          this.state = State.TrailerStart;
          return true;
        }
        this.state = State.Data;
        return true;
      case State.DataCr:
        return this.expect(byte, 0x0d, State.DataLf);
      case State.DataLf:
        return this.expect(byte, 0x0a, State.Size);
      case State.TrailerStart:
        if (++this.trailerBytes > MAX_TRAILER_BYTES) return false;
        if (byte === 0x0d) {
          this.state = State.EndLf;
          return true;
        }
        // A trailer field; an obs-fold continuation is as malformed here as in a head.
        if (byte === 0x20 || byte === 0x09 || byte === 0x0a) return false;
        this.state = State.Trailer;
        return true;
      case State.Trailer:
        if (++this.trailerBytes > MAX_TRAILER_BYTES) return false;
        if (byte === 0x0d) {
          this.state = State.TrailerLf;
          return true;
        }
        return byte === 0x09 || (byte >= 0x20 && byte !== 0x7f);
      case State.TrailerLf:
        return this.expect(byte, 0x0a, State.TrailerStart);
      case State.EndLf:
        return this.expect(byte, 0x0a, State.Done);
      default:
        return false;
    }
  }

  /** A step that takes exactly `want` and moves to `next`; anything else is malformed. */
  private expect(byte: number, want: number, next: State): boolean {
    if (byte !== want) return false;
    this.state = next;
    return true;
  }
}

/** One run of body bytes in chunked framing. */
export function chunkOf(data: Buffer): Buffer[] {
  return [Buffer.from(`${data.length.toString(16)}\r\n`, "latin1"), data, CRLF];
}

const CRLF = Buffer.from("\r\n", "latin1");
export const LAST_CHUNK = Buffer.from("0\r\n\r\n", "latin1");
