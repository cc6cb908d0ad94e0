/**
 * A request's body, read up to a bound before the request is decided, so its shape (field
 * names, never values) is judged before a byte of it is forwarded.
 */
export interface BodyPrefix {
  readonly bytes: Buffer;
  readonly truncated: boolean;
}

/** Header names as sent (the shape lower-cases and filters them). */
export function headerNames(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) out.push(raw[i]!);
  return out;
}
