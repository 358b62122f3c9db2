/**
 * Email verification and email change.
 *
 * - `GET /verify-email?token=…` only shows a "Confirm my email" button: mail scanners
 *   follow links, so a GET changes nothing. `POST /verify-email` confirms.
 * - `POST /account/verify-email` sends a new confirmation mail (rate-limited).
 * - `/account/email` (new address + current password) sends a confirmation link to the new
 *   address and a notice to the old one; the address changes only when confirmed.
 * - {@link verificationRequiredPage} is what EMAIL_VERIFICATION_REQUIRED shows in place of a
 *   shared workspace to an account whose address is not confirmed.
 *
 * @example
 * ```ts
 * app.route("/", verifyEmailRoutes());
 * ```
 * @module
 */
import { Hono } from "hono";
import { Layout } from "../components/Layout.tsx";
import { Alert, Field } from "../components/Form.tsx";
import { BreakableEmail } from "../components/EmailStatus.tsx";
import { type AppEnv, type Ctx, limitedClient, readForm } from "../lib/http.ts";
import { pageContext, pageContextWithUser, renderPage } from "../lib/render.tsx";
import { getAuth, signInRequired } from "../lib/auth.ts";
import { parseEmail } from "../lib/email.ts";
import { cleanText, humanWait } from "../lib/text.ts";
import { verifyCurrentPassword } from "../lib/reauth.ts";
import { enqueueMail } from "../lib/mail/outgoing.ts";
import {
  addVerificationMail,
  reserveAddressMail,
  reserveClientMailAttempt,
} from "../lib/mail/flows.ts";
import { confirmEmail, readVerifyToken, type TokenFailure } from "../kv/email_tokens.ts";
import * as keys from "../kv/keys.ts";
import type { User } from "../kv/users.ts";
import { breadcrumb } from "../lib/observability.ts";
import { errorResponse } from "./errors.tsx";

const FAILURE_TEXT: Record<TokenFailure | "taken", string> = {
  unknown: "This confirmation link is not valid. It may have been mistyped.",
  used: "This confirmation link has already been used.",
  expired: "This confirmation link has expired.",
  stale: "This confirmation link is no longer valid: the account's email address changed since.",
  taken: "Another account now uses this email address, so it cannot be confirmed for yours.",
};

function failurePage(c: Ctx, reason: TokenFailure | "taken") {
  breadcrumb("token", "verification link refused", { reason });
  return renderPage(
    c,
    <Layout page={pageContext(c)} title="Confirmation link not valid" narrow>
      <section class="card">
        <h1>This link cannot be used</h1>
        <Alert kind="error">{FAILURE_TEXT[reason]}</Alert>
        <p>
          Sign in and open <a href="/account">your account</a> to send a new confirmation link.
        </p>
      </section>
    </Layout>,
    reason === "unknown" ? 400 : reason === "taken" ? 409 : 410,
  );
}

function tooManyPage(c: Ctx, retryAfter: number, what: string) {
  c.header("Retry-After", String(retryAfter));
  return renderPage(
    c,
    <Layout page={pageContext(c)} title="Too many requests" narrow>
      <section class="card">
        <h1>Please wait a little</h1>
        <Alert kind="error">
          {what} Try again in {humanWait(retryAfter)}.
        </Alert>
        <p>
          <a href="/account">Back to your account</a>
        </p>
      </section>
    </Layout>,
    429,
  );
}

/** The page shown instead of a shared workspace while EMAIL_VERIFICATION_REQUIRED is on. */
export function verificationRequiredPage(c: Ctx): Response {
  return renderPage(
    c,
    <Layout page={pageContext(c)} title="Confirm your email address" narrow>
      <section class="card">
        <h1>Confirm your email address first</h1>
        <p>
          This workspace is shared with other people. Confirm your email address to open it: use the
          link in the mail we sent you, or send a new one from <a href="/account">your account</a>.
        </p>
      </section>
    </Layout>,
    403,
  );
}

interface ChangeValues {
  email: string;
}

async function changePage(
  c: Ctx,
  values: ChangeValues,
  errors: { email?: string; password?: string } = {},
  status: 200 | 422 | 429 = 200,
  formError?: string,
) {
  const auth = await getAuth(c);
  return renderPage(
    c,
    <Layout page={await pageContextWithUser(c)} title="Change your email address" narrow>
      <section class="card">
        <h1>Change your email address</h1>
        <div aria-live="polite">
          {formError
            ? <Alert kind="error">{formError}</Alert>
            : (errors.email || errors.password) && (
              <Alert kind="error">Please fix the highlighted fields.</Alert>
            )}
        </div>
        {auth.ok && (
          <p>
            Your current address is{" "}
            <strong>
              <BreakableEmail address={auth.user.email} />
            </strong>. We will send a confirmation link to the new address; the change happens when
            you open it.
          </p>
        )}
        <form method="post" action="/account/email" novalidate>
          <Field
            label="New email address"
            name="email"
            type="email"
            value={values.email}
            error={errors.email}
            autocomplete="email"
            required
            autofocus={!errors.password}
          />
          <Field
            label="Current password"
            name="password"
            type="password"
            error={errors.password}
            autocomplete="current-password"
            required
            autofocus={!!errors.password}
          />
          <button type="submit" class="button primary">Send confirmation link</button>
        </form>
        <p class="muted">
          <a href="/account">Back to your account</a>
        </p>
      </section>
    </Layout>,
    status,
  );
}

/** Routes: /verify-email, /account/verify-email, /account/email. */
export function verifyEmailRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use("/verify-email", async (c, next) => {
    // The URL carries a token: keep it out of every Referer.
    c.header("Referrer-Policy", "no-referrer");
    await next();
    c.res.headers.set("Referrer-Policy", "no-referrer");
  });

  app.get("/verify-email", async (c) => {
    if (c.req.query("status") === "verified") {
      return renderPage(
        c,
        <Layout page={pageContext(c)} title="Email confirmed" narrow>
          <section class="card">
            <h1>Your email address is confirmed</h1>
            <p>
              <a href="/login" class="button primary">Sign in</a>
            </p>
          </section>
        </Layout>,
      );
    }
    const token = c.req.query("token");
    const hold = await readVerifyToken(c.get("kv"), token);
    if (!hold.ok) return failurePage(c, hold.reason);
    return renderPage(
      c,
      <Layout page={pageContext(c)} title="Confirm your email address" narrow>
        <section class="card">
          <h1>Confirm your email address</h1>
          <p>
            Confirm that <strong>{hold.token.value.email}</strong> is your address for Lodge.
          </p>
          <form method="post" action="/verify-email">
            <input type="hidden" name="token" value={token} />
            <button type="submit" class="button primary">Confirm my email</button>
          </form>
        </section>
      </Layout>,
    );
  });

  app.post("/verify-email", async (c) => {
    const form = await readForm(c, ["token"]);
    if (!form.ok) return errorResponse(c, form.status, form.message);
    const result = await confirmEmail(c.get("kv"), form.fields.get("token"));
    if (!result.ok) return failurePage(c, result.reason);
    breadcrumb("auth", result.changed ? "email changed" : "email verified", {
      userId: result.user.id,
    });
    const auth = await getAuth(c);
    if (auth.ok && auth.user.id === result.user.id) {
      return c.redirect(`/account?email=${result.changed ? "changed" : "verified"}`, 303);
    }
    return c.redirect("/verify-email?status=verified", 303);
  });

  app.post("/account/verify-email", async (c) => {
    const auth = await getAuth(c);
    if (!auth.ok) return signInRequired(c, auth.reason);
    const user = auth.user;
    if (user.emailVerifiedAt) return c.redirect("/account?email=already", 303);
    const kv = c.get("kv");
    const config = c.get("config");
    const client = await reserveClientMailAttempt(kv, config, limitedClient(c.get("clientIp")));
    if (!client.ok) {
      return tooManyPage(c, client.retryAfter, "Too many requests from your network.");
    }
    const address = await reserveAddressMail(kv, config, user.emailKey);
    if (!address.ok) {
      return tooManyPage(c, address.retryAfter, "We already sent several mails to this address.");
    }
    for (let i = 0; i < 5; i++) {
      const entry = await kv.get<User>(keys.user(user.id));
      if (!entry.value || entry.value.emailVerifiedAt) break;
      const op = kv.atomic().check(entry);
      addVerificationMail(op, config, entry.value, {
        purpose: "verify",
        email: entry.value.email,
        emailKey: entry.value.emailKey,
      });
      if ((await op.commit()).ok) break;
    }
    return c.redirect("/account?email=sent", 303);
  });

  app.get("/account/email", async (c) => {
    const auth = await getAuth(c);
    if (!auth.ok) return signInRequired(c, auth.reason);
    return changePage(c, { email: "" });
  });

  app.post("/account/email", async (c) => {
    const auth = await getAuth(c);
    if (!auth.ok) return signInRequired(c, auth.reason);
    const form = await readForm(c, ["email", "password"]);
    if (!form.ok) return errorResponse(c, form.status, form.message);
    const typed = cleanText(form.fields.get("email")).slice(0, 300);
    const kv = c.get("kv");
    const config = c.get("config");
    const client = await reserveClientMailAttempt(kv, config, limitedClient(c.get("clientIp")));
    if (!client.ok) {
      return tooManyPage(c, client.retryAfter, "Too many requests from your network.");
    }
    const email = parseEmail(typed);
    if (!email.ok) return changePage(c, { email: typed }, { email: email.error }, 422);
    const user = auth.user;
    if (email.key === user.emailKey && email.display === user.email) {
      return changePage(c, { email: typed }, { email: "That is already your email address." }, 422);
    }
    if (!user.passwordHash) {
      return changePage(c, { email: typed }, {
        password: "This account has no password yet: set one with “Forgot your password?” first.",
      }, 422);
    }
    // The same per-user budget as a password change: a stolen session cannot guess from here.
    const check = await verifyCurrentPassword(c, user, form.fields.get("password"), "email change");
    if (!check.ok) {
      return check.status === 429
        ? changePage(
          c,
          { email: typed },
          {},
          429,
          `Too many password attempts for this account. Try again in ${
            humanWait(check.retryAfter ?? 60)
          }.`,
        )
        : changePage(c, { email: typed }, { password: check.message }, 422);
    }
    // Over the per-address limit: answer as if sent and send nothing (reveals nothing).
    const address = await reserveAddressMail(kv, config, email.key);
    if (address.ok) {
      for (let i = 0; i < 5; i++) {
        const entry = await kv.get<User>(keys.user(user.id));
        if (!entry.value) break;
        const current = entry.value;
        const op = kv.atomic().check(entry);
        addVerificationMail(op, config, current, {
          purpose: "change",
          email: email.display,
          emailKey: email.key,
        });
        enqueueMail(op, current.email, {
          kind: "email_change_notice",
          newEmail: email.display,
          accountUrl: new URL("/account", config.appUrl).href,
        });
        if ((await op.commit()).ok) break;
      }
      breadcrumb("auth", "email change requested", { userId: user.id });
    }
    return c.redirect("/account?email=change_sent", 303);
  });

  return app;
}
