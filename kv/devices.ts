/**
 * Trusted devices: the defence against malicious account lockout (OWASP's "device cookies").
 *
 * When a browser signs in, signs up or completes a password reset, the server mints a device
 * token for that account (256-bit random, never one the client chose) and keeps its SHA-256 with
 * the account's user id. The browser's device cookie holds its tokens, one per account
 * ({@link MAX_DEVICE_TOKENS} at most). A later sign-in attempt for an account from a browser that
 * holds a token trusted for *that user* is limited on its own, instead of by the account-wide and
 * per-address limits: strangers' failures cannot lock the owner out of their own browser. Trust
 * follows the user, not the address (an email change keeps it, a new account at an old address
 * does not inherit it), and a password change, reset or "sign out everywhere" drops it for every
 * other browser.
 *
 * @example
 * ```ts
 * const token = await trustedTokenFor(kv, email.key, deviceTokens(c));
 * ```
 * @module
 */
import * as keys from "./keys.ts";
import { sha256Hex } from "../lib/crypto.ts";

/** What KV keeps for a trusted device token. */
export interface TrustedDevice {
  userId: string;
  createdAt: number;
  /** The trust ends here, whatever `expireIn` did (local KV expires lazily). */
  expiresAt: number;
}

/** How long a token stays trusted after the sign-in that minted or renewed it: 180 days. */
export const DEVICE_TRUST_SECONDS = 180 * 86_400;

/** Tokens one browser keeps (one per account used from it; the oldest drops out). */
export const MAX_DEVICE_TOKENS = 5;

/**
 * Which of the browser's `tokens` is trusted for the account that `emailKey` names today, if any:
 * one getMany of the email index and the tokens' records.
 */
export async function trustedTokenFor(
  kv: Deno.Kv,
  emailKey: string,
  tokens: readonly string[],
  now = Date.now(),
): Promise<string | null> {
  if (tokens.length === 0) return null;
  const [index, ...records] = await kv.getMany<[string, ...TrustedDevice[]]>([
    keys.userByEmail(emailKey),
    ...tokens.map((t) => keys.trustedDevice(sha256Hex(t))),
  ]);
  const userId = index.value;
  if (typeof userId !== "string") return null;
  const i = records.findIndex((r) => r.value?.userId === userId && r.value.expiresAt > now);
  return i < 0 ? null : tokens[i];
}

/** Adds (or renews) a token's trust for `userId` to an atomic. */
export function addTrustedDevice(
  op: Deno.AtomicOperation,
  userId: string,
  token: string,
  now = Date.now(),
): Deno.AtomicOperation {
  const hash = sha256Hex(token);
  const expiresAt = now + DEVICE_TRUST_SECONDS * 1000;
  const expireIn = DEVICE_TRUST_SECONDS * 1000;
  const value: TrustedDevice = { userId, createdAt: now, expiresAt };
  return op.set(keys.trustedDevice(hash), value, { expireIn })
    .set(keys.userTrustedDevice(userId, hash), expiresAt, { expireIn });
}

/** Which of `tokens` are trusted for `userId` now. */
export async function trustedTokensOf(
  kv: Deno.Kv,
  userId: string,
  tokens: readonly string[],
  now = Date.now(),
): Promise<string[]> {
  if (tokens.length === 0) return [];
  const records = await kv.getMany<TrustedDevice[]>(
    tokens.map((t) => keys.trustedDevice(sha256Hex(t))),
  );
  return tokens.filter((_, i) =>
    records[i].value?.userId === userId && records[i].value!.expiresAt > now
  );
}

/** Drops one trusted token of `userId`, by its hash (a session signed out from elsewhere). */
export async function forgetTrustedDevice(
  kv: Deno.Kv,
  userId: string,
  deviceHash: string,
): Promise<void> {
  const record = await kv.get<TrustedDevice>(keys.trustedDevice(deviceHash));
  const op = kv.atomic().delete(keys.userTrustedDevice(userId, deviceHash));
  // Only this user's trust: the hash came from their own session, but stay exact.
  if (record.value?.userId === userId) op.check(record).delete(keys.trustedDevice(deviceHash));
  await op.commit();
}

/** Drops every trusted token of `userId` except those in `keep`; returns how many went. */
export async function forgetTrustedDevices(
  kv: Deno.Kv,
  userId: string,
  keep: readonly string[] = [],
): Promise<number> {
  const kept = new Set(keep.map(sha256Hex));
  const hashes: string[] = [];
  for await (const e of kv.list({ prefix: keys.userTrustedDevices(userId) })) {
    const hash = e.key.at(-1) as string;
    if (!kept.has(hash)) hashes.push(hash);
  }
  // Each pair is deleted together; 100 pairs an atomic stays far inside KV's limits.
  for (let i = 0; i < hashes.length; i += 100) {
    const op = kv.atomic();
    for (const hash of hashes.slice(i, i + 100)) {
      op.delete(keys.trustedDevice(hash)).delete(keys.userTrustedDevice(userId, hash));
    }
    await op.commit();
  }
  return hashes.length;
}
