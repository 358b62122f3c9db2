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
import { addUserEvent } from "./events.ts";
import { breadcrumb, captureWarning } from "../lib/observability.ts";

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
  /**
   * SHA-256 of the device token this browser was trusted with at sign-in (kv/devices.ts), so
   * signing this session out from another device can drop that browser's trust too.
   */
  deviceHash?: string;
}

/** Lifetimes, in seconds, from configuration. */
export interface SessionPolicy {
  sessionIdleTimeout: number;
  sessionAbsoluteLifetime: number;
  sessionTouchInterval: number;
}

/** Why a session could not be used. */
export type SessionFailure = "missing" | "unknown" | "idle_timeout" | "expired";

/**
 * Why a session ended, as the token endpoint and the status banner report it:
 * `logout` (signed out in this browser), `revoked` (signed out from another device),
 * `signed_out_everywhere`, `password_changed`, `expired`, `idle_timeout`,
 * `removed_from_workspace`, `switched_account` (this browser signed in as another account).
 */
export type RevocationReason =
  | "logout"
  | "switched_account"
  | "revoked"
  | "signed_out_everywhere"
  | "password_changed"
  | "expired"
  | "idle_timeout"
  | "removed_from_workspace";

/** ["session_revocations", tokenHash]: why a session ended (kept {@link REVOCATION_MEMORY_MS}). */
export interface SessionRevocation {
  reason: RevocationReason;
  sessionId: string;
  /** Whose session it was (opaque id), so a later refusal can still say whose it was. */
  userId?: string;
  at: number;
  expiresAt: number;
}

/** How long a revocation's reason stays readable, ms (a tab asleep for a day still learns why). */
export const REVOCATION_MEMORY_MS = 24 * 60 * 60 * 1000;

/**
 * Adds the writes that end one session to an atomic: the session, its index entry, the
 * reason record, and (per call, see {@link addRevocationEvent}) nothing else.
 *
 * @example
 * ```ts
 * addSessionRevocation(op, userId, sessionId, tokenHash, "password_changed");
 * ```
 */
export function addSessionRevocation(
  op: Deno.AtomicOperation,
  userId: string,
  sessionId: string,
  tokenHash: string,
  reason: RevocationReason,
  now = Date.now(),
): Deno.AtomicOperation {
  const record: SessionRevocation = {
    reason,
    sessionId,
    userId,
    at: now,
    expiresAt: now + REVOCATION_MEMORY_MS,
  };
  return op.delete(keys.session(tokenHash))
    .delete(keys.userSession(userId, sessionId))
    .set(keys.sessionRevocation(tokenHash), record, { expireIn: REVOCATION_MEMORY_MS });
}

/**
 * Adds the live-channel event announcing revoked sessions of one user to an atomic.
 *
 * @example
 * ```ts
 * addRevocationEvent(op, userId, [sessionId], "revoked");
 * ```
 */
export function addRevocationEvent(
  op: Deno.AtomicOperation,
  userId: string,
  sessionIds: string[],
  reason: RevocationReason,
  now = Date.now(),
): void {
  addUserEvent(op, userId, "session.revoked", { sessionIds, reason }, now);
}

/** Reasons a person causes on the device itself: no warning event for these. */
const OWN_DOING: ReadonlySet<RevocationReason> = new Set(["logout", "switched_account"]);

/**
 * Records a committed revocation for operators: a breadcrumb always, and a warning event when
 * the person did not cause it on the device that loses its session (signed out from another
 * device, all devices, password changed elsewhere, expired). Captured here, at revocation
 * time, because a device usually learns of it over the live channel and never asks
 * `POST /api/token` again, so a refusal-time warning would miss most of them.
 *
 * @example
 * ```ts
 * noteRevocation(userId, "password_changed", 3); // breadcrumb + warning event
 * ```
 */
export function noteRevocation(
  userId: string,
  reason: RevocationReason,
  count: number,
  message = count === 1 ? "session revoked" : "sessions revoked",
): void {
  breadcrumb("session", message, { reason, userId, count });
  if (!OWN_DOING.has(reason)) {
    captureWarning("session ended unexpectedly", { reason, userId, count });
  }
}

/**
 * Reads why the session with this token hash ended (null when unknown or forgotten).
 *
 * @example
 * ```ts
 * const r = await getSessionRevocation(kv, sha256Hex(cookieToken)); // { reason: "logout", … }
 * ```
 */
export async function getSessionRevocation(
  kv: Deno.Kv,
  tokenHash: string,
  now = Date.now(),
): Promise<SessionRevocation | null> {
  const r = (await kv.get<SessionRevocation>(keys.sessionRevocation(tokenHash))).value;
  return r && r.expiresAt > now ? r : null;
}

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
  input: { userId: string; userAgent: string; ip: string; deviceHash?: string },
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
      ...(input.deviceHash ? { deviceHash: input.deviceHash } : {}),
    },
  };
}

/**
 * How long KV keeps a session entry after its idle or absolute deadline. Lodge checks the
 * stored times itself on every use, so an entry past its deadline is never accepted; keeping
 * it lets whoever notices first (a request, a token refresh, an open event stream) end it
 * with its real reason ("idle_timeout", "expired") instead of finding it silently gone.
 */
export const EXPIRED_SESSION_KEPT_MS = REVOCATION_MEMORY_MS;

function ttl(policy: SessionPolicy, s: Session, now: number): number {
  const deadline = Math.min(s.expiresAt - now, policy.sessionIdleTimeout * 1000);
  return Math.max(1000, deadline) + EXPIRED_SESSION_KEPT_MS;
}

/** When a session ends unless used again: its idle or its absolute deadline, whichever is first. */
export function sessionDeadline(policy: SessionPolicy, s: Session): number {
  return Math.min(s.expiresAt, s.lastSeenAt + policy.sessionIdleTimeout * 1000);
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
      expireIn: ns.session.expiresAt - now + EXPIRED_SESSION_KEPT_MS,
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
): "expired" | "idle_timeout" | null {
  if (now >= s.expiresAt) return "expired";
  if (now - s.lastSeenAt >= policy.sessionIdleTimeout * 1000) return "idle_timeout";
  return null;
}

/**
 * Validates a stored session entry (already read, e.g. in a getMany) and touches its
 * last-seen time when older than the touch interval (unless `touch` is false: a background
 * check is not activity). Expired sessions are deleted with their reason.
 *
 * @example
 * ```ts
 * const r = await acceptSession(kv, config, tokenHash, await kv.get(keys.session(tokenHash)));
 * ```
 */
export async function acceptSession(
  kv: Deno.Kv,
  policy: SessionPolicy,
  tokenHash: string,
  entry: Deno.KvEntryMaybe<Session>,
  now = Date.now(),
  touch = true,
): Promise<SessionResult> {
  const s = entry.value;
  if (!s) return { ok: false, reason: "unknown" };
  const failure = sessionExpiry(policy, s, now);
  if (failure) {
    await endSession(kv, tokenHash, entry as Deno.KvEntry<Session>, failure, now);
    return { ok: false, reason: failure };
  }
  if (touch && now - s.lastSeenAt >= policy.sessionTouchInterval * 1000) {
    const touched = { ...s, lastSeenAt: now };
    // A lost race means another request touched it just now: fine either way.
    await kv.atomic().check(entry).set(keys.session(tokenHash), touched, {
      expireIn: ttl(policy, touched, now),
    }).commit();
    return { ok: true, session: touched, tokenHash };
  }
  return { ok: true, session: s, tokenHash };
}

/** Loads the session for a cookie token (`touch` false: not counted as activity). */
export async function loadSession(
  kv: Deno.Kv,
  policy: SessionPolicy,
  token: string | undefined,
  now = Date.now(),
  touch = true,
): Promise<SessionResult> {
  if (!token) return { ok: false, reason: "missing" };
  const tokenHash = sha256Hex(token);
  const entry = await kv.get<Session>(keys.session(tokenHash));
  return acceptSession(kv, policy, tokenHash, entry, now, touch);
}

/**
 * Ends the session in `entry` with `reason` (session, index, reason record and event in one
 * atomic, checked on the entry, so of several requests or streams noticing the same expiry
 * exactly one ends it and reports it). False when someone else changed it first.
 *
 * @example
 * ```ts
 * const entry = await kv.get<Session>(keys.session(tokenHash));
 * if (entry.value && sessionExpiry(config, entry.value)) await endSession(kv, tokenHash, entry, "expired");
 * ```
 */
export async function endSession(
  kv: Deno.Kv,
  tokenHash: string,
  entry: Deno.KvEntry<Session>,
  reason: RevocationReason,
  now = Date.now(),
): Promise<boolean> {
  const s = entry.value;
  const op = addSessionRevocation(kv.atomic(), s.userId, s.id, tokenHash, reason, now);
  addRevocationEvent(op, s.userId, [s.id], reason, now);
  const res = await op.check(entry).commit();
  if (res.ok) noteRevocation(s.userId, reason, 1);
  return res.ok;
}

/**
 * Revokes the session behind a cookie token (sign-out by default). Takes effect on the next
 * request; open event streams of that session close with `reason`.
 *
 * @example
 * ```ts
 * await revokeSessionByToken(kv, cookieToken); // reason "logout"
 * // Signing in over a session: another account's session ends as "switched_account".
 * await revokeSessionByToken(kv, old, (s) => s.userId === user.id ? "logout" : "switched_account");
 * ```
 */
export async function revokeSessionByToken(
  kv: Deno.Kv,
  token: string,
  reason: RevocationReason | ((s: Session) => RevocationReason) = "logout",
  policy?: SessionPolicy,
): Promise<Session | null> {
  const tokenHash = sha256Hex(token);
  const entry = await kv.get<Session>(keys.session(tokenHash));
  if (!entry.value) return null;
  // A session already past its deadline ended by itself: record that, not this revocation.
  const expired = policy ? sessionExpiry(policy, entry.value) : null;
  const why = expired ?? (typeof reason === "function" ? reason(entry.value) : reason);
  await endSession(kv, tokenHash, entry as Deno.KvEntry<Session>, why);
  return entry.value;
}

/**
 * Revokes one session of a user by its public id; false when it does not exist.
 *
 * @example
 * ```ts
 * await revokeSessionById(kv, userId, sessionId, "revoked");
 * ```
 */
/** A user's session by its id (the sessions page's handle), or null. */
export async function getUserSession(
  kv: Deno.Kv,
  userId: string,
  sessionId: string,
): Promise<Session | null> {
  const idx = await kv.get<string>(keys.userSession(userId, sessionId));
  return idx.value ? (await kv.get<Session>(keys.session(idx.value))).value : null;
}

export async function revokeSessionById(
  kv: Deno.Kv,
  userId: string,
  sessionId: string,
  reason: RevocationReason = "revoked",
  policy?: SessionPolicy,
): Promise<boolean> {
  const idx = await kv.get<string>(keys.userSession(userId, sessionId));
  if (!idx.value) return false;
  const now = Date.now();
  if (policy) {
    // Past its deadline, it had already ended: record why, and report it as not revoked here.
    const entry = await kv.get<Session>(keys.session(idx.value));
    const expired = entry.value ? sessionExpiry(policy, entry.value, now) : null;
    if (expired) {
      await endSession(kv, idx.value, entry as Deno.KvEntry<Session>, expired, now);
      return false;
    }
  }
  const op = addSessionRevocation(kv.atomic(), userId, sessionId, idx.value, reason, now);
  addRevocationEvent(op, userId, [sessionId], reason, now);
  const res = await op.check(idx).commit();
  if (res.ok) noteRevocation(userId, reason, 1);
  return res.ok;
}

/**
 * Ends, with their own reason (`idle_timeout` / `expired`), a user's sessions that are past their
 * deadline but still kept in KV — before a mass revocation, so it does not record
 * "signed out everywhere" or "password changed" for sessions that had already ended.
 *
 * @example
 * ```ts
 * await endExpiredSessions(kv, config, userId);
 * await revokeAllSessions(kv, userId, currentSessionId, "signed_out_everywhere");
 * ```
 */
export async function endExpiredSessions(
  kv: Deno.Kv,
  policy: SessionPolicy,
  userId: string,
  now = Date.now(),
): Promise<number> {
  let ended = 0;
  for (const { tokenHash, entry } of await sessionEntries(kv, userId)) {
    const expired = entry.value ? sessionExpiry(policy, entry.value, now) : null;
    if (expired && await endSession(kv, tokenHash, entry as Deno.KvEntry<Session>, expired, now)) {
      ended++;
    }
  }
  return ended;
}

/** Sessions revoked per atomic by {@link revokeAllSessions} (3 mutations each, plus the event). */
const REVOKE_BATCH = 300;

/**
 * Revokes every session of a user, except `keepSessionId` when given. Returns how many.
 * Each batch of sessions goes in one atomic with its reason records and one event.
 *
 * @example
 * ```ts
 * await revokeAllSessions(kv, userId, currentSessionId, "signed_out_everywhere");
 * ```
 */
export async function revokeAllSessions(
  kv: Deno.Kv,
  userId: string,
  keepSessionId?: string,
  reason: RevocationReason = "signed_out_everywhere",
): Promise<number> {
  let count = 0;
  let op = kv.atomic();
  let batch: string[] = [];
  const flush = async () => {
    addRevocationEvent(op, userId, batch, reason);
    await op.commit();
    op = kv.atomic();
    batch = [];
  };
  for await (const e of kv.list<string>({ prefix: keys.userSessions(userId) })) {
    const sessionId = e.key[2] as string;
    if (sessionId === keepSessionId) continue;
    addSessionRevocation(op, userId, sessionId, e.value, reason);
    batch.push(sessionId);
    count++;
    if (batch.length >= REVOKE_BATCH) await flush();
  }
  if (batch.length) await flush();
  if (count) noteRevocation(userId, reason, count, "sessions revoked");
  return count;
}

/**
 * Reads and validates the session behind a cookie token without counting it as activity
 * (a background token refresh must not keep an idle session alive). Expired sessions are
 * deleted with their reason, as in {@link acceptSession}.
 *
 * @example
 * ```ts
 * const r = await peekSession(kv, config, cookieToken); // no last-seen write
 * ```
 */
export function peekSession(
  kv: Deno.Kv,
  policy: SessionPolicy,
  token: string | undefined,
  now = Date.now(),
): Promise<SessionResult> {
  return loadSession(kv, policy, token, now, false);
}

/**
 * Records activity now ("Stay signed in"): moves last-seen forward, whatever the touch interval.
 *
 * @example
 * ```ts
 * await touchSession(kv, config, tokenHash); // "Stay signed in"
 * ```
 */
export async function touchSession(
  kv: Deno.Kv,
  policy: SessionPolicy,
  tokenHash: string,
  now = Date.now(),
): Promise<Session | null> {
  for (let i = 0; i < 5; i++) {
    const entry = await kv.get<Session>(keys.session(tokenHash));
    if (!entry.value) return null;
    const touched = { ...entry.value, lastSeenAt: Math.max(now, entry.value.lastSeenAt) };
    const res = await kv.atomic().check(entry).set(keys.session(tokenHash), touched, {
      expireIn: ttl(policy, touched, now),
    }).commit();
    if (res.ok) return touched;
  }
  return (await kv.get<Session>(keys.session(tokenHash))).value;
}

/** A user's stored session entries with their token hashes, in index order (newest first if `reverse`). */
async function sessionEntries(
  kv: Deno.Kv,
  userId: string,
  reverse = false,
): Promise<{ tokenHash: string; entry: Deno.KvEntryMaybe<Session> }[]> {
  const hashes: string[] = [];
  for await (const e of kv.list<string>({ prefix: keys.userSessions(userId) }, { reverse })) {
    hashes.push(e.value);
  }
  const out: { tokenHash: string; entry: Deno.KvEntryMaybe<Session> }[] = [];
  for (let i = 0; i < hashes.length; i += 10) {
    const batch = hashes.slice(i, i + 10);
    const entries = await kv.getMany<Session[]>(batch.map(keys.session));
    entries.forEach((entry, j) => out.push({ tokenHash: batch[j], entry }));
  }
  return out;
}

/** Lists a user's live sessions (not past a deadline, given the policy), newest first. */
export async function listSessions(
  kv: Deno.Kv,
  userId: string,
  policy?: SessionPolicy,
  now = Date.now(),
): Promise<Session[]> {
  return (await sessionEntries(kv, userId, true))
    .map(({ entry }) => entry.value)
    .filter((s): s is Session => !!s && !(policy && sessionExpiry(policy, s, now)));
}
