/**
 * Server-side sessions. The browser holds a 256-bit random token; KV holds only its
 * SHA-256, with idle and absolute expiry checked on every read against the stored times.
 *
 * @example
 * ```ts
 * const { token } = await createSession(kv, policy, { userId, userAgent, ip });
 * const result = await loadSession(kv, policy, token);
 * ```
 * @module
 */
import * as keys from "./keys.ts";
import { newId, randomToken, sha256Hex } from "../lib/crypto.ts";
import { HintCache } from "./db.ts";

/**
 * Token hash → user id hints, so a page can fetch the session and the user's records in
 * one `getMany`. A hint never decides anything: the session entry read alongside does.
 */
export const sessionHints: HintCache<string> = new HintCache<string>();

/** A stored session (never contains the token itself). */
export interface Session {
  id: string;
  userId: string;
  createdAt: number;
  lastSeenAt: number;
  /** Absolute end of life, ms since epoch. */
  expiresAt: number;
  userAgent: string;
  ip: string;
}

/** Lifetimes, in seconds, from configuration. */
export interface SessionPolicy {
  sessionIdleTimeout: number;
  sessionAbsoluteLifetime: number;
  sessionTouchInterval: number;
}

/** Why a session could not be used. */
export type SessionFailure = "missing" | "unknown" | "idle_timeout" | "expired";

/** Result of {@link loadSession}. */
export type SessionResult =
  | { ok: true; session: Session; tokenHash: string }
  | { ok: false; reason: SessionFailure };

/** A freshly minted session and the token for the cookie. */
export interface NewSession {
  token: string;
  tokenHash: string;
  session: Session;
}

/** Builds a new session (not yet stored); see {@link addSession}. */
export function newSession(
  policy: SessionPolicy,
  input: { userId: string; userAgent: string; ip: string },
  now = Date.now(),
): NewSession {
  const token = randomToken();
  return {
    token,
    tokenHash: sha256Hex(token),
    session: {
      id: newId(now),
      userId: input.userId,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: now + policy.sessionAbsoluteLifetime * 1000,
      userAgent: input.userAgent.slice(0, 512),
      ip: input.ip,
    },
  };
}

function ttl(policy: SessionPolicy, s: Session, now: number): number {
  return Math.max(1000, Math.min(s.expiresAt - now, policy.sessionIdleTimeout * 1000));
}

/** Adds the writes that store `ns` to an atomic (so sign-up can store it with the user). */
export function addSession(
  op: Deno.AtomicOperation,
  policy: SessionPolicy,
  ns: NewSession,
  now = Date.now(),
): Deno.AtomicOperation {
  const expireIn = ttl(policy, ns.session, now);
  return op
    .check({ key: keys.session(ns.tokenHash), versionstamp: null })
    .set(keys.session(ns.tokenHash), ns.session, { expireIn })
    .set(keys.userSession(ns.session.userId, ns.session.id), ns.tokenHash, {
      expireIn: ns.session.expiresAt - now,
    });
}

/** Creates and stores a session; returns it with its token. */
export async function createSession(
  kv: Deno.Kv,
  policy: SessionPolicy,
  input: { userId: string; userAgent: string; ip: string },
  now = Date.now(),
): Promise<NewSession> {
  const ns = newSession(policy, input, now);
  const res = await addSession(kv.atomic(), policy, ns, now).commit();
  if (!res.ok) throw new Error("session token collision"); // 2^-256: effectively never
  return ns;
}

/** Checks a stored session's times; returns the failure, or null when usable. */
export function sessionExpiry(
  policy: SessionPolicy,
  s: Session,
  now = Date.now(),
): SessionFailure | null {
  if (now >= s.expiresAt) return "expired";
  if (now - s.lastSeenAt >= policy.sessionIdleTimeout * 1000) return "idle_timeout";
  return null;
}

/**
 * Validates a stored session entry (already read, e.g. in a getMany) and touches its
 * last-seen time when older than the touch interval. Expired sessions are deleted.
 */
export async function acceptSession(
  kv: Deno.Kv,
  policy: SessionPolicy,
  tokenHash: string,
  entry: Deno.KvEntryMaybe<Session>,
  now = Date.now(),
): Promise<SessionResult> {
  const s = entry.value;
  if (!s) return { ok: false, reason: "unknown" };
  const failure = sessionExpiry(policy, s, now);
  if (failure) {
    await deleteSession(kv, tokenHash, s);
    return { ok: false, reason: failure };
  }
  if (now - s.lastSeenAt >= policy.sessionTouchInterval * 1000) {
    const touched = { ...s, lastSeenAt: now };
    // A lost race means another request touched it just now: fine either way.
    await kv.atomic().check(entry).set(keys.session(tokenHash), touched, {
      expireIn: ttl(policy, touched, now),
    }).commit();
    return { ok: true, session: touched, tokenHash };
  }
  return { ok: true, session: s, tokenHash };
}

/** Loads the session for a cookie token. */
export async function loadSession(
  kv: Deno.Kv,
  policy: SessionPolicy,
  token: string | undefined,
  now = Date.now(),
): Promise<SessionResult> {
  if (!token) return { ok: false, reason: "missing" };
  const tokenHash = sha256Hex(token);
  const entry = await kv.get<Session>(keys.session(tokenHash));
  return acceptSession(kv, policy, tokenHash, entry, now);
}

async function deleteSession(kv: Deno.Kv, tokenHash: string, s: Session): Promise<void> {
  await kv.atomic()
    .delete(keys.session(tokenHash))
    .delete(keys.userSession(s.userId, s.id))
    .commit();
}

/** Revokes the session behind a cookie token (sign-out). Takes effect on the next request. */
export async function revokeSessionByToken(kv: Deno.Kv, token: string): Promise<Session | null> {
  const tokenHash = sha256Hex(token);
  const entry = await kv.get<Session>(keys.session(tokenHash));
  if (!entry.value) return null;
  await deleteSession(kv, tokenHash, entry.value);
  return entry.value;
}

/** Revokes one session of a user by its public id; false when it does not exist. */
export async function revokeSessionById(
  kv: Deno.Kv,
  userId: string,
  sessionId: string,
): Promise<boolean> {
  const idx = await kv.get<string>(keys.userSession(userId, sessionId));
  if (!idx.value) return false;
  await kv.atomic()
    .delete(keys.session(idx.value))
    .delete(keys.userSession(userId, sessionId))
    .commit();
  return true;
}

/** Revokes every session of a user, except `keepSessionId` when given. Returns how many. */
export async function revokeAllSessions(
  kv: Deno.Kv,
  userId: string,
  keepSessionId?: string,
): Promise<number> {
  let count = 0;
  let op = kv.atomic();
  let pending = 0;
  for await (const e of kv.list<string>({ prefix: keys.userSessions(userId) })) {
    const sessionId = e.key[2] as string;
    if (sessionId === keepSessionId) continue;
    op.delete(keys.session(e.value)).delete(e.key);
    count++;
    if (++pending >= 400) {
      await op.commit();
      op = kv.atomic();
      pending = 0;
    }
  }
  if (pending) await op.commit();
  return count;
}

/** Lists a user's live sessions, newest first. */
export async function listSessions(kv: Deno.Kv, userId: string): Promise<Session[]> {
  const hashes: string[] = [];
  for await (const e of kv.list<string>({ prefix: keys.userSessions(userId) }, { reverse: true })) {
    hashes.push(e.value);
  }
  const out: Session[] = [];
  for (let i = 0; i < hashes.length; i += 10) {
    const entries = await kv.getMany<Session[]>(hashes.slice(i, i + 10).map(keys.session));
    for (const e of entries) if (e.value) out.push(e.value);
  }
  return out;
}
