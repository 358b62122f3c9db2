/**
 * Tokens sent by mail: password reset and email verification (sign-up and email change).
 *
 * A token is 256 random bits; KV keeps only its SHA-256 with the token's own expiry,
 * checked on every read (`expireIn` is only cleanup). A used token stays as a tombstone
 * (`usedAt`) until it would have expired, so a second use answers "already used".
 *
 * A reset token also stores a fingerprint of the account's password hash and email at
 * issue time: any later password or email change — through any code path — makes the
 * fingerprint differ and the link stale, without that code knowing about resets.
 *
 * @example
 * ```ts
 * const issued = newMailToken();
 * const op = kv.atomic();
 * addResetToken(op, user, issued, 3600);
 * await op.commit();
 * const r = await resetPassword(kv, issued.token, newHash, (op, u) => {});
 * ```
 * @module
 */
import * as keys from "./keys.ts";
import { ConflictError } from "./db.ts";
import { randomToken, sha256Hex } from "../lib/crypto.ts";
import type { User } from "./users.ts";

/** A stored reset token. */
export interface ResetToken {
  userId: string;
  createdAt: number;
  expiresAt: number;
  /** {@link accountFingerprint} of the user when the token was issued. */
  fingerprint: string;
  /** Set when used; the record stays until expiry so reuse answers 410. */
  usedAt?: number;
}

/** A stored verification token. */
export interface VerifyToken {
  userId: string;
  /** "verify": confirm the current address; "change": confirm and switch to `email`. */
  purpose: "verify" | "change";
  /** The address being confirmed, as typed. */
  email: string;
  emailKey: string;
  /** The account's email key when issued; the token is stale once it differs. */
  fromEmailKey: string;
  /**
   * For "change": {@link accountFingerprint} when issued, so a password reset or change
   * (what the notice to the old address tells a victim to do) cancels a pending change.
   */
  fingerprint?: string;
  createdAt: number;
  expiresAt: number;
  usedAt?: number;
}

/** Why a token cannot be used: unknown → 400; used, expired or stale → 410. */
export type TokenFailure = "unknown" | "used" | "expired" | "stale";

/** A freshly made token: the secret for the link and the hash for KV. */
export interface MailToken {
  token: string;
  tokenHash: string;
}

/** Makes a new 256-bit token and its SHA-256. */
export function newMailToken(): MailToken {
  const token = randomToken();
  return { token, tokenHash: sha256Hex(token) };
}

/** True when `s` has the shape of a token (43 base64url characters). */
export function isTokenShaped(s: string | undefined | null): s is string {
  return typeof s === "string" && /^[A-Za-z0-9_-]{43}$/.test(s);
}

/** A digest of what a reset must not outlive: the password hash and the email key. */
export function accountFingerprint(user: Pick<User, "passwordHash" | "emailKey">): string {
  return sha256Hex(`lodge-reset-v1\n${user.passwordHash ?? ""}\n${user.emailKey}`);
}

// Tombstones outlive the token by a day so "already used" can be told apart from unknown.
const TOMBSTONE_MS = 86_400_000;

/** Adds a reset token for `user` to an atomic (with its per-user index entry). */
export function addResetToken(
  op: Deno.AtomicOperation,
  user: User,
  issued: MailToken,
  ttlSeconds: number,
  now = Date.now(),
): ResetToken {
  const record: ResetToken = {
    userId: user.id,
    createdAt: now,
    expiresAt: now + ttlSeconds * 1000,
    fingerprint: accountFingerprint(user),
  };
  op.check({ key: keys.resetToken(issued.tokenHash), versionstamp: null })
    .set(keys.resetToken(issued.tokenHash), record, { expireIn: ttlSeconds * 1000 + TOMBSTONE_MS })
    .set(keys.userResetToken(user.id, issued.tokenHash), record.expiresAt, {
      expireIn: ttlSeconds * 1000,
    });
  return record;
}

/** A usable token with the entries to check in the atomic that uses it. */
export interface TokenHold<T> {
  ok: true;
  tokenHash: string;
  token: Deno.KvEntry<T>;
  user: Deno.KvEntry<User>;
}

async function readToken<T extends { userId: string; expiresAt: number; usedAt?: number }>(
  kv: Deno.Kv,
  key: (hash: string) => Deno.KvKey,
  token: string | undefined,
  now: number,
): Promise<TokenHold<T> | { ok: false; reason: TokenFailure }> {
  if (!isTokenShaped(token)) return { ok: false, reason: "unknown" };
  const tokenHash = sha256Hex(token);
  const entry = await kv.get<T>(key(tokenHash));
  if (!entry.value) return { ok: false, reason: "unknown" };
  if (entry.value.usedAt) return { ok: false, reason: "used" };
  if (now >= entry.value.expiresAt) return { ok: false, reason: "expired" };
  const user = await kv.get<User>(keys.user(entry.value.userId));
  if (!user.value) return { ok: false, reason: "unknown" };
  return {
    ok: true,
    tokenHash,
    token: entry as Deno.KvEntry<T>,
    user: user as Deno.KvEntry<User>,
  };
}

/** Reads a reset token and its user; refuses used, expired and stale (account changed) ones. */
export async function readResetToken(
  kv: Deno.Kv,
  token: string | undefined,
  now = Date.now(),
): Promise<TokenHold<ResetToken> | { ok: false; reason: TokenFailure }> {
  const r = await readToken<ResetToken>(kv, keys.resetToken, token, now);
  if (r.ok && r.token.value.fingerprint !== accountFingerprint(r.user.value)) {
    return { ok: false, reason: "stale" };
  }
  return r;
}

/**
 * Sets a new password with a reset token, in one atomic checked on the token and the
 * user: the token becomes used, every other outstanding reset token of the user is
 * deleted, and `addMail` can enqueue the notice in the same commit. Of two concurrent
 * calls with one token exactly one succeeds; the other gets `used`.
 * Sessions are not touched here: the caller revokes them after the commit.
 */
export async function resetPassword(
  kv: Deno.Kv,
  token: string,
  passwordHash: string,
  addMail: (op: Deno.AtomicOperation, user: User) => void,
  now = Date.now(),
): Promise<{ ok: true; user: User } | { ok: false; reason: TokenFailure }> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const hold = await readResetToken(kv, token, now);
    if (!hold.ok) return hold;
    // Using a link mailed to the account's address proves the mailbox, so it counts as
    // verification too.
    const user: User = {
      ...hold.user.value,
      passwordHash,
      emailVerifiedAt: hold.user.value.emailVerifiedAt ?? now,
    };
    const op = kv.atomic().check(hold.token).check(hold.user)
      .set(keys.user(user.id), user)
      .set(keys.resetToken(hold.tokenHash), { ...hold.token.value, usedAt: now }, {
        expireIn: Math.max(0, hold.token.value.expiresAt - now) + TOMBSTONE_MS,
      });
    let mutations = 2;
    for await (
      const e of kv.list<number>({ prefix: keys.userResetTokens(user.id) }, { limit: 400 })
    ) {
      const hash = e.key[2] as string;
      op.delete(e.key);
      if (hash !== hold.tokenHash) op.delete(keys.resetToken(hash));
      if ((mutations += 2) > 800) break;
    }
    addMail(op, user);
    if ((await op.commit()).ok) return { ok: true, user };
  }
  throw new ConflictError("this account");
}

/** Adds a verification token to an atomic. */
export function addVerifyToken(
  op: Deno.AtomicOperation,
  input: Pick<
    VerifyToken,
    "userId" | "purpose" | "email" | "emailKey" | "fromEmailKey" | "fingerprint"
  >,
  issued: MailToken,
  ttlSeconds: number,
  now = Date.now(),
): VerifyToken {
  const record: VerifyToken = { ...input, createdAt: now, expiresAt: now + ttlSeconds * 1000 };
  op.check({ key: keys.verifyToken(issued.tokenHash), versionstamp: null })
    .set(keys.verifyToken(issued.tokenHash), record, {
      expireIn: ttlSeconds * 1000 + TOMBSTONE_MS,
    });
  return record;
}

/** Reads a verification token and its user; stale once the account's address moved on. */
export async function readVerifyToken(
  kv: Deno.Kv,
  token: string | undefined,
  now = Date.now(),
): Promise<TokenHold<VerifyToken> | { ok: false; reason: TokenFailure }> {
  const r = await readToken<VerifyToken>(kv, keys.verifyToken, token, now);
  if (r.ok && r.user.value.emailKey !== r.token.value.fromEmailKey) {
    return { ok: false, reason: "stale" };
  }
  if (
    r.ok && r.token.value.fingerprint !== undefined &&
    r.token.value.fingerprint !== accountFingerprint(r.user.value)
  ) {
    return { ok: false, reason: "stale" };
  }
  return r;
}

/** Outcome of {@link confirmEmail}. */
export type ConfirmResult =
  | { ok: true; user: User; changed: boolean }
  | { ok: false; reason: TokenFailure | "taken" };

/**
 * Uses a verification token. "verify" marks the address verified; "change" switches the
 * account to the new address in one atomic with the email index (the new index key must
 * be free; the old one is deleted) and marks it verified.
 */
export async function confirmEmail(
  kv: Deno.Kv,
  token: string,
  now = Date.now(),
): Promise<ConfirmResult> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const hold = await readVerifyToken(kv, token, now);
    if (!hold.ok) return hold;
    const t = hold.token.value;
    const old = hold.user.value;
    const user: User = {
      ...old,
      email: t.email,
      emailKey: t.emailKey,
      emailVerifiedAt: t.purpose === "verify" ? old.emailVerifiedAt ?? now : now,
    };
    const op = kv.atomic().check(hold.token).check(hold.user)
      .set(keys.user(user.id), user)
      .set(keys.verifyToken(hold.tokenHash), { ...t, usedAt: now }, {
        expireIn: Math.max(0, t.expiresAt - now) + TOMBSTONE_MS,
      });
    // A case-only change keeps the lookup key (and index) but is still a change to report.
    const changed = t.purpose === "change" && t.email !== old.email;
    const keyChanged = t.purpose === "change" && t.emailKey !== old.emailKey;
    if (keyChanged) {
      op.check({ key: keys.userByEmail(t.emailKey), versionstamp: null })
        .set(keys.userByEmail(t.emailKey), user.id)
        .delete(keys.userByEmail(old.emailKey));
    }
    if ((await op.commit()).ok) return { ok: true, user, changed };
    if (keyChanged) {
      const owner = await kv.get<string>(keys.userByEmail(t.emailKey));
      if (owner.value && owner.value !== user.id) return { ok: false, reason: "taken" };
    }
  }
  throw new ConflictError("this account");
}
