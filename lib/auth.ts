/**
 * Session cookies and the signed-in state of a request.
 *
 * The cookie holds a 256-bit random token (`HttpOnly; SameSite=Lax; Path=/`, plus
 * `Secure` and the `__Host-` prefix when APP_URL is https). {@link getAuth} loads the
 * session, the user and their workspaces once per request.
 *
 * @example
 * ```ts
 * const auth = await getAuth(c);
 * if (!auth.ok) return signInRedirect(c, auth.reason);
 * ```
 * @module
 */
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { Ctx } from "./http.ts";
import type { Config } from "./config.ts";
import {
  getSessionRevocation,
  loadSession,
  type RevocationReason,
  type Session,
  type SessionFailure,
} from "../kv/sessions.ts";
import { getUser, type User } from "../kv/users.ts";
import {
  addTrustedDevice,
  DEVICE_TRUST_SECONDS,
  forgetTrustedDevices,
  MAX_DEVICE_TOKENS,
  trustedTokensOf,
} from "../kv/devices.ts";
import { randomToken, sha256Hex } from "./crypto.ts";

/** A 256-bit token from `randomToken()`: 43 base64url characters (session and device cookies). */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** The session cookie's name for a configuration. */
export function sessionCookieName(config: Config): string {
  return config.secureCookies ? "__Host-lodge_session" : "lodge_session";
}

/**
 * Sets the session cookie. Its Max-Age is the session's absolute lifetime, so it never
 * outlives the server-side session; the server's stored times decide validity.
 */
export function setSessionCookie(c: Ctx, token: string): void {
  const config = c.get("config");
  setCookie(c, sessionCookieName(config), token, {
    httpOnly: true,
    sameSite: "Lax",
    path: "/",
    secure: config.secureCookies,
    maxAge: config.sessionAbsoluteLifetime,
  });
}

/** Clears the session cookie. */
export function clearSessionCookie(c: Ctx): void {
  const config = c.get("config");
  deleteCookie(c, sessionCookieName(config), { path: "/", secure: config.secureCookies });
}

/** The raw session token from the request's cookie, if any. */
export function sessionToken(c: Ctx): string | undefined {
  const t = getCookie(c, sessionCookieName(c.get("config")));
  return t && TOKEN.test(t) ? t : undefined;
}

/** The device cookie's name (see kv/devices.ts): the browser's device tokens, one per account. */
export function deviceCookieName(config: Config): string {
  return config.secureCookies ? "__Host-lodge_device" : "lodge_device";
}

/** The well-formed device tokens in the browser's cookie (at most {@link MAX_DEVICE_TOKENS}). */
export function deviceTokens(c: Ctx): string[] {
  const raw = getCookie(c, deviceCookieName(c.get("config"))) ?? "";
  return [...new Set(raw.split(".").filter((t) => TOKEN.test(t)))].slice(
    0,
    MAX_DEVICE_TOKENS,
  );
}

/**
 * Sets the device cookie to the browser's tokens with `token` first (newest first; the oldest
 * beyond {@link MAX_DEVICE_TOKENS} drop out). It outlives sign-outs on purpose: a token proves
 * only that this browser signed in to an account, which exempts it from lockouts others cause,
 * never that it may act as anyone. Tokens the server never minted are harmless: nothing in KV
 * trusts them.
 */
export function setDeviceCookie(c: Ctx, token: string): void {
  const config = c.get("config");
  const tokens = [token, ...deviceTokens(c).filter((t) => t !== token)].slice(0, MAX_DEVICE_TOKENS);
  setCookie(c, deviceCookieName(config), tokens.join("."), {
    httpOnly: true,
    sameSite: "Lax",
    path: "/",
    secure: config.secureCookies,
    maxAge: DEVICE_TRUST_SECONDS,
  });
}

/**
 * After a password change or reset (both prove the password or the mailbox): this browser gets
 * a fresh token trusted for the user, and every other browser's trust for the user is dropped.
 */
/**
 * After "sign out all other devices", which needs only a session: every other browser's trust for
 * the user is dropped, and this browser keeps only what it already had. It gets no fresh token:
 * a stolen session must not be able to mint itself new sign-in budgets.
 */
export async function keepOnlyThisBrowsersTrust(c: Ctx, userId: string): Promise<void> {
  const kv = c.get("kv");
  const mine = await trustedTokensOf(kv, userId, deviceTokens(c));
  await forgetTrustedDevices(kv, userId, mine);
}

export async function trustOnlyThisBrowser(c: Ctx, userId: string): Promise<void> {
  const kv = c.get("kv");
  const token = randomToken();
  await addTrustedDevice(kv.atomic(), userId, token).commit();
  await forgetTrustedDevices(kv, userId, [token]);
  setDeviceCookie(c, token);
}

/** A signed-in request. */
export interface SignedIn {
  ok: true;
  session: Session;
  tokenHash: string;
  user: User;
}

/** The request's sign-in state. */
export type AuthState = SignedIn | { ok: false; reason: SessionFailure };

const AUTH = new WeakMap<Request, Promise<AuthState>>();

async function load(c: Ctx): Promise<AuthState> {
  const res = await loadSession(c.get("kv"), c.get("config"), sessionToken(c));
  if (!res.ok) return res;
  const user = await getUser(c.get("kv"), res.session.userId);
  if (!user) return { ok: false, reason: "unknown" };
  return { ok: true, session: res.session, tokenHash: res.tokenHash, user };
}

/** Loads (once per request) who is signed in. */
export function getAuth(c: Ctx): Promise<AuthState> {
  let p = AUTH.get(c.req.raw);
  if (!p) {
    p = load(c);
    AUTH.set(c.req.raw, p);
  }
  return p;
}

/** Records an auth state already established by a route (e.g. the workspace page's getMany). */
export function setAuth(c: Ctx, state: AuthState): void {
  AUTH.set(c.req.raw, Promise.resolve(state));
}

/** Why a page says the session ended, by how it ended (the sign-in page's `m` notices). */
const ENDED_NOTICE: Partial<Record<RevocationReason, string>> = {
  password_changed: "password_changed",
  revoked: "revoked",
  signed_out_everywhere: "revoked",
  logout: "signed_out",
};

/**
 * The answer for a request that needs a session and has none: 303 to the sign-in page
 * with `next` for pages, 401 JSON for /api. A stale cookie is cleared. A page says why, when
 * KV still knows how the session ended (signed out from another device, password changed).
 */
export async function signInRequired(c: Ctx, reason: SessionFailure): Promise<Response> {
  if (reason !== "missing") clearSessionCookie(c);
  if (c.req.path.startsWith("/api/")) {
    return c.json({
      error: "unauthenticated",
      reason,
      message: "Sign in to continue.",
      requestId: c.get("requestId"),
    }, 401);
  }
  const url = new URL(c.req.url);
  const next = url.pathname + url.search;
  const params = new URLSearchParams({ next });
  if (reason === "idle_timeout" || reason === "expired") params.set("m", "expired");
  const token = sessionToken(c);
  if (reason === "unknown" && token) {
    const ended = await getSessionRevocation(c.get("kv"), sha256Hex(token));
    const notice = ended ? ENDED_NOTICE[ended.reason] : undefined;
    if (notice) params.set("m", notice);
  }
  return c.redirect(`/login?${params}`, 303);
}
