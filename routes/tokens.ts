/**
 * Access tokens for the browser and other services: `POST /api/token` mints a short-lived
 * JWT for the session cookie, `GET /.well-known/jwks.json` publishes the verification keys.
 *
 * A refused mint answers 401 with a reason code the status banner turns into words:
 * `missing`, `unknown`, `expired`, `idle_timeout`, or the revocation reason
 * (`logout`, `revoked`, `signed_out_everywhere`, `password_changed`, …).
 *
 * @example
 * ```ts
 * app.route("/", tokenRoutes());
 * // fetch("/api/token", { method: "POST" }) → { token, expiresAt, sessionIdleExpiresAt, … }
 * ```
 * @module
 */
import { Hono } from "hono";
import type { AppEnv, Ctx } from "../lib/http.ts";
import { problem } from "../lib/http.ts";
import { clearSessionCookie, sessionToken } from "../lib/auth.ts";
import { sha256Hex } from "../lib/crypto.ts";
import * as keys from "../kv/keys.ts";
import {
  getSessionRevocation,
  peekSession,
  type RevocationReason,
  type Session,
  sessionHints,
  touchSession,
} from "../kv/sessions.ts";
import type { User } from "../kv/users.ts";
import type { UserWorkspace } from "../kv/workspaces.ts";
import { currentSigningKey, mintAccessToken, publishedKeys } from "../lib/tokens.ts";
import { breadcrumb, captureWarning } from "../lib/observability.ts";

/** Reasons a person caused themselves: no warning event for these. */
const SELF_INFLICTED = new Set(["missing", "logout", "switched_account"]);

/** Body of a successful `POST /api/token`. */
export interface TokenResponse {
  token: string;
  /** ISO time the token expires. */
  expiresAt: string;
  /** ISO time the session ends for inactivity unless there is activity. */
  sessionIdleExpiresAt: string;
  /** ISO time the session ends whatever happens. */
  sessionExpiresAt: string;
  workspace: { id: string; slug: string; role: string } | null;
  /** The token's `sub` and `sid`: a page checks that a token is for its own user. */
  userId: string;
  sessionId: string;
  /**
   * The same three ends as milliseconds left, counted on the server's clock. Browsers use
   * these, not the ISO times, so a device clock that is wrong cannot skew them.
   */
  expiresInMs: number;
  sessionIdleExpiresInMs: number;
  sessionExpiresInMs: number;
  /** The server's time when it answered (for diagnosing clock skew). */
  serverTime: string;
}

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

type TokenOptions =
  | { ok: true; workspace?: string; stayActive: boolean }
  | { ok: false; status: 400 | 415 };

async function readOptions(c: Ctx): Promise<TokenOptions> {
  const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
  const text = await c.req.text();
  if (!text.trim()) return { ok: true, stayActive: false };
  if (type !== "application/json") return { ok: false, status: 415 };
  try {
    const body = JSON.parse(text);
    if (!body || typeof body !== "object" || Array.isArray(body)) return { ok: false, status: 400 };
    const workspace = body.workspace;
    if (workspace !== undefined && (typeof workspace !== "string" || !SLUG.test(workspace))) {
      return { ok: false, status: 400 };
    }
    if (body.stayActive !== undefined && typeof body.stayActive !== "boolean") {
      return { ok: false, status: 400 };
    }
    return { ok: true, workspace, stayActive: body.stayActive === true };
  } catch {
    return { ok: false, status: 400 };
  }
}

function refuse(c: Ctx, reason: string, userId?: string, alreadyReported = false): Response {
  breadcrumb("token", "token refresh refused", { reason, userId: userId ?? null }, "warning");
  if (!SELF_INFLICTED.has(reason) && !alreadyReported) {
    // Someone was signed out without doing it themselves: operators want to see that.
    captureWarning("token refresh refused", { reason, ...(userId ? { userId } : {}) });
  }
  if (reason !== "missing") clearSessionCookie(c);
  c.header("Cache-Control", "no-store");
  return c.json({
    error: "unauthenticated",
    reason,
    message: reason === "missing"
      ? "You are not signed in."
      : "Your session has ended. Sign in again.",
    requestId: c.get("requestId"),
  }, 401);
}

/**
 * Routes: POST /api/token, GET /.well-known/jwks.json.
 *
 * @example
 * ```ts
 * app.route("/", tokenRoutes());
 * ```
 */
export function tokenRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.post("/api/token", async (c) => {
    const config = c.get("config");
    const kv = c.get("kv");
    const options = await readOptions(c);
    const cookie = sessionToken(c);
    const now = Date.now();
    const result = await peekSession(kv, config, cookie, now);
    if (!result.ok) {
      let reason: string = result.reason;
      let userId: string | undefined;
      if (reason === "unknown" && cookie) {
        const revocation = await getSessionRevocation(kv, sha256Hex(cookie), now);
        if (revocation) {
          reason = revocation.reason satisfies RevocationReason;
          userId = revocation.userId;
        }
      }
      // An expiry found just now ended the session here, and that was reported (noteRevocation).
      const endedNow = result.reason === "expired" || result.reason === "idle_timeout";
      return refuse(c, reason, userId, endedNow);
    }
    // Judged after the session, so a signed-out caller learns that first (401), whatever it sent.
    if (!options.ok) {
      return problem(
        c,
        options.status,
        options.status === 415 ? "unsupported_media_type" : "bad_request",
        'Send no body, or JSON like {"workspace": "slug", "stayActive": true}.',
      );
    }
    let session: Session = result.session;
    if (options.stayActive) {
      const touched = await touchSession(kv, config, result.tokenHash, now);
      if (!touched) return refuse(c, "unknown", session.userId);
      session = touched;
    }
    const userId = session.userId;
    sessionHints.set(result.tokenHash, userId);
    const [userE, pointerE, slugE] = await kv.getMany<[User, string, string]>([
      keys.user(userId),
      keys.signingKeyCurrent(),
      keys.workspaceBySlug(options.workspace ?? "-"),
    ]);
    const user = userE.value;
    if (!user) return refuse(c, "unknown", userId);
    const wsId = options.workspace ? slugE.value : user.defaultWorkspaceId;
    const [membership, key] = await Promise.all([
      wsId ? kv.get<UserWorkspace>(keys.userWorkspace(userId, wsId)) : null,
      currentSigningKey(kv, config, now, pointerE.value),
    ]);
    if (options.workspace && !membership?.value) {
      // With whose session: a page of another account tells "not a member" from "not you".
      c.header("Cache-Control", "no-store");
      return c.json({
        error: "forbidden",
        message: "You are not a member of that workspace.",
        requestId: c.get("requestId"),
        userId,
      }, 403);
    }
    const active = membership?.value && wsId
      ? { id: wsId, slug: membership.value.slug, role: membership.value.role }
      : null;
    const { token, expiresAt } = await mintAccessToken(config, key, {
      sub: userId,
      sid: session.id,
      ws: active?.id ?? null,
      role: active?.role ?? null,
    }, now);
    breadcrumb("token", "token refreshed", { userId, stayActive: options.stayActive });
    c.header("Cache-Control", "no-store");
    const idleEnd = Math.min(
      session.lastSeenAt + config.sessionIdleTimeout * 1000,
      session.expiresAt,
    );
    const left = (end: number) => Math.max(0, end - now);
    const body: TokenResponse = {
      token,
      expiresAt: new Date(expiresAt).toISOString(),
      sessionIdleExpiresAt: new Date(idleEnd).toISOString(),
      sessionExpiresAt: new Date(session.expiresAt).toISOString(),
      workspace: active,
      userId,
      sessionId: session.id,
      expiresInMs: left(expiresAt),
      sessionIdleExpiresInMs: left(idleEnd),
      sessionExpiresInMs: left(session.expiresAt),
      serverTime: new Date(now).toISOString(),
    };
    return c.json(body);
  });

  app.get("/.well-known/jwks.json", async (c) => {
    const jwks = await publishedKeys(c.get("kv"));
    if (jwks.keys.length === 0) {
      // Publish the first key before any token exists, so verifiers can fetch early.
      await currentSigningKey(c.get("kv"), c.get("config"));
      jwks.keys.push(...(await publishedKeys(c.get("kv"))).keys);
    }
    // Short cache: verifiers refetch on an unknown kid anyway, and rotation adds keys.
    c.header("Cache-Control", "public, max-age=60");
    return c.json(jwks);
  });

  app.all("/api/token", (c) => {
    c.header("Allow", "POST");
    return problem(c, 405, "method_not_allowed", "Use POST for /api/token.");
  });

  return app;
}
