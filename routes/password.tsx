/**
 * Password reset by email: `/password/forgot` asks for a link, `/password/reset` uses it.
 *
 * - The forgot page answers the same page, status and (nearly) time whether or not an
 *   account exists; mail goes only to the address stored on a matching account.
 * - `GET /password/reset?token=…` moves the token into a short-lived HttpOnly cookie and
 *   redirects, so the token leaves the address bar before any page renders; every page
 *   here is served with `Referrer-Policy: no-referrer`.
 * - `POST /password/reset` sets the password, uses up this and every other reset token of
 *   the user, revokes every session, queues a "password changed" notice and sends the
 *   person to sign in.
 *
 * @example
 * ```ts
 * app.route("/", passwordRoutes());
 * ```
 * @module
 */
import { Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { Layout } from "../components/Layout.tsx";
import { Alert, Field, NewPasswordField } from "../components/Form.tsx";
import { type AppEnv, type Ctx, limitedClient, readForm } from "../lib/http.ts";
import { pageContext, renderPage } from "../lib/render.tsx";
import { clearSessionCookie, trustOnlyThisBrowser } from "../lib/auth.ts";
import { parseEmail } from "../lib/email.ts";
import { cleanText, humanWait } from "../lib/text.ts";
import { hashPassword, passwordProblem } from "../lib/password.ts";
import { humanDuration } from "../lib/mail/templates.ts";
import { enqueueMail } from "../lib/mail/outgoing.ts";
import { requestPasswordReset, reserveClientMailAttempt } from "../lib/mail/flows.ts";
import {
  isTokenShaped,
  readResetToken,
  resetPassword,
  type TokenFailure,
} from "../kv/email_tokens.ts";
import { endExpiredSessions, revokeAllSessions } from "../kv/sessions.ts";
import { breadcrumb } from "../lib/observability.ts";
import { errorResponse } from "./errors.tsx";

/** How long the reset cookie lives, seconds (the token's own expiry still applies). */
export const RESET_COOKIE_MAX_AGE = 900;

/** The reset cookie's name for a configuration. */
export function resetCookieName(c: Ctx): string {
  return c.get("config").secureCookies ? "__Secure-lodge_reset" : "lodge_reset";
}

function setResetCookie(c: Ctx, token: string) {
  setCookie(c, resetCookieName(c), token, {
    httpOnly: true,
    sameSite: "Lax",
    path: "/password/reset",
    secure: c.get("config").secureCookies,
    maxAge: RESET_COOKIE_MAX_AGE,
  });
}

function clearResetCookie(c: Ctx) {
  deleteCookie(c, resetCookieName(c), {
    path: "/password/reset",
    secure: c.get("config").secureCookies,
  });
}

function ForgotForm({ email, error }: { email: string; error?: string }) {
  return (
    <form method="post" action="/password/forgot" novalidate>
      <Field
        label="Email"
        name="email"
        type="email"
        value={email}
        error={error}
        autocomplete="email"
        required
        autofocus
      />
      <button type="submit" class="button primary">Send me a reset link</button>
    </form>
  );
}

function forgotPage(
  c: Ctx,
  p: { email?: string; error?: string; sentTo?: string; formError?: string },
  status: 200 | 400 | 415 | 422 | 429 = 200,
) {
  const ttl = humanDuration(c.get("config").resetTokenTtl);
  return renderPage(
    c,
    <Layout page={pageContext(c)} title="Forgot your password?" narrow>
      <section class="card">
        <h1>Forgot your password?</h1>
        <div aria-live="polite">
          {p.sentTo !== undefined && (
            <Alert kind="success">
              If an account exists for{" "}
              <strong>{p.sentTo}</strong>, we sent it a link to choose a new password. The link
              works once and expires in{" "}
              {ttl}. Check your spam folder if it does not arrive within a few minutes.
            </Alert>
          )}
          {p.formError && <Alert kind="error">{p.formError}</Alert>}
        </div>
        {p.sentTo === undefined && (
          <p>Enter the email address of your account and we will send you a link to reset it.</p>
        )}
        <ForgotForm email={p.email ?? ""} error={p.error} />
        <p class="muted">
          Remembered it? <a href="/login">Sign in</a>
        </p>
      </section>
    </Layout>,
    status,
  );
}

const FAILURE_TEXT: Record<TokenFailure, string> = {
  unknown: "This password reset link is not valid. It may have been mistyped or replaced.",
  used: "This password reset link has already been used.",
  expired: "This password reset link has expired.",
  stale:
    "This password reset link is no longer valid because the account's password or email address changed since it was sent.",
};

function failurePage(c: Ctx, reason: TokenFailure) {
  clearResetCookie(c);
  breadcrumb("token", "reset link refused", { reason });
  return renderPage(
    c,
    <Layout page={pageContext(c)} title="Reset link not valid" narrow>
      <section class="card">
        <h1>This link cannot be used</h1>
        <Alert kind="error">{FAILURE_TEXT[reason]}</Alert>
        <p>
          <a href="/password/forgot" class="button primary">Ask for a new link</a>
        </p>
      </section>
    </Layout>,
    reason === "unknown" ? 400 : 410,
  );
}

function resetForm(c: Ctx, errors: { password?: string; confirm?: string } = {}) {
  const hasErrors = !!(errors.password || errors.confirm);
  return renderPage(
    c,
    <Layout page={pageContext(c)} title="Choose a new password" narrow>
      <section class="card">
        <h1>Choose a new password</h1>
        <div aria-live="polite">
          {hasErrors && <Alert kind="error">Please fix the highlighted fields.</Alert>}
        </div>
        <p>After this, every device signed in to your account is signed out.</p>
        <form method="post" action="/password/reset" novalidate>
          {/* Focus goes where the error is: the repeat field when only it is wrong. */}
          <NewPasswordField
            label="New password"
            error={errors.password}
            autofocus={!errors.confirm || !!errors.password}
          />
          <Field
            label="Repeat the new password"
            name="confirm"
            type="password"
            error={errors.confirm}
            autocomplete="new-password"
            required
            autofocus={!!errors.confirm && !errors.password}
          />
          <button type="submit" class="button primary">Set new password</button>
        </form>
      </section>
    </Layout>,
    hasErrors ? 422 : 200,
  );
}

/** Routes: /password/forgot, /password/reset. */
export function passwordRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use("/password/*", async (c, next) => {
    // These URLs may carry a token: never let one leak to another page or site.
    c.header("Referrer-Policy", "no-referrer");
    await next();
    c.res.headers.set("Referrer-Policy", "no-referrer");
  });

  app.get("/password/forgot", (c) => forgotPage(c, {}));

  app.post("/password/forgot", async (c) => {
    const form = await readForm(c, ["email"]);
    const typed = cleanText(form.fields.get("email")).slice(0, 300);
    if (!form.ok) return forgotPage(c, { email: typed, formError: form.message }, form.status);
    const email = parseEmail(typed);
    if (!email.ok) {
      return forgotPage(c, { email: typed, error: email.error }, 422);
    }
    const kv = c.get("kv");
    const config = c.get("config");
    const client = await reserveClientMailAttempt(kv, config, limitedClient(c.get("clientIp")));
    if (!client.ok) {
      c.header("Retry-After", String(client.retryAfter));
      return forgotPage(c, {
        email: typed,
        formError: `Too many requests from your network. Try again in ${
          humanWait(client.retryAfter)
        }.`,
      }, 429);
    }
    const outcome = await requestPasswordReset(kv, config, email);
    breadcrumb("auth", "password reset requested", { outcome });
    return forgotPage(c, { sentTo: email.display });
  });

  app.get("/password/reset", async (c) => {
    const fromLink = c.req.query("token");
    if (fromLink !== undefined) {
      // Take the token out of the URL before anything renders (history, Referer, logs).
      if (isTokenShaped(fromLink)) setResetCookie(c, fromLink);
      else clearResetCookie(c);
      return c.redirect("/password/reset", 303);
    }
    const token = getCookie(c, resetCookieName(c));
    const hold = await readResetToken(c.get("kv"), token);
    if (!hold.ok) return failurePage(c, hold.reason);
    return resetForm(c);
  });

  app.post("/password/reset", async (c) => {
    const form = await readForm(c, ["password", "confirm"]);
    if (!form.ok) return errorResponse(c, form.status, form.message);
    const kv = c.get("kv");
    const config = c.get("config");
    const token = getCookie(c, resetCookieName(c));
    const hold = await readResetToken(kv, token);
    if (!hold.ok) return failurePage(c, hold.reason);
    const password = form.fields.get("password");
    const { email, name } = hold.user.value;
    const problem = passwordProblem(password, { email, name });
    if (problem) return resetForm(c, { password: problem });
    if (password !== form.fields.get("confirm")) {
      return resetForm(c, { confirm: "The two passwords do not match." });
    }
    const passwordHash = await hashPassword(password);
    const result = await resetPassword(kv, token!, passwordHash, (op, user) => {
      enqueueMail(op, user.email, {
        kind: "password_changed",
        forgotUrl: new URL("/password/forgot", config.appUrl).href,
        byReset: true,
      });
    });
    if (!result.ok) return failurePage(c, result.reason);
    // Sessions that had already ended keep their own reason, not "password changed".
    await endExpiredSessions(kv, config, result.user.id);
    const revoked = await revokeAllSessions(kv, result.user.id, undefined, "password_changed");
    breadcrumb("auth", "password reset", { userId: result.user.id, sessionsRevoked: revoked });
    clearResetCookie(c);
    clearSessionCookie(c);
    // The mailbox's owner is at this browser: it alone stays trusted, so a lockout others caused
    // does not keep them out of the sign-in that follows, and no other browser keeps a budget.
    await trustOnlyThisBrowser(c, result.user.id);
    return c.redirect("/login?m=password_reset", 303);
  });

  return app;
}
