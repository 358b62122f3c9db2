/**
 * Random tokens, identifiers and hashing.
 *
 * Tokens are 256-bit random values in base64url; only their SHA-256 is ever stored.
 *
 * @example
 * ```ts
 * const token = randomToken();       // goes to the browser
 * const stored = sha256Hex(token);   // goes to KV
 * ```
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";

/** A 256-bit random token, base64url without padding (43 characters). */
export function randomToken(bytes = 32): string {
  const buf = new Uint8Array(bytes);
  crypto.getRandomValues(buf);
  return base64url(buf);
}

/** Base64url without padding (the built-in `Uint8Array.prototype.toBase64`). */
export function base64url(buf: Uint8Array): string {
  return (buf as Uint8Array & { toBase64(o: object): string })
    .toBase64({ alphabet: "base64url", omitPadding: true });
}

/** SHA-256 as lowercase hex; `node:crypto` is ~20x faster than `crypto.subtle` for one small input. */
export function sha256Hex(input: string): string {
  return createHash("sha256").update(input).digest("hex");
}

/** Constant-time equality for two strings of any length. */
export function safeEqual(a: string, b: string): boolean {
  const ab = new TextEncoder().encode(a);
  const bb = new TextEncoder().encode(b);
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

const CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz";

/**
 * A new identifier: 48-bit millisecond time then 80 random bits, Crockford base32
 * (26 characters, sorts by creation time, like a ULID).
 */
export function newId(now = Date.now()): string {
  let out = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[t % 32] + out;
    t = Math.floor(t / 32);
  }
  const rnd = new Uint8Array(16);
  crypto.getRandomValues(rnd);
  for (let i = 0; i < 16; i++) out += CROCKFORD[rnd[i] % 32];
  return out;
}
