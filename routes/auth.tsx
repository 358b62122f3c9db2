/**
 * Sign-up, sign-in and sign-out pages. Forms post and redirect (no JavaScript needed).
 *
 * @example
 * ```ts
 * app.route("/", authRoutes());
 * ```
 * @module
 */
import { Hono } from "hono";
import type { ComponentChildren } from "preact";
import { Layout, type PageContext } from "../components/Layout.tsx";
import { Alert, Field, NewPasswordField } from "../components/Form.tsx";
import { type AppEnv, type Ctx, limitedClient, ownEntry, readForm, safeNext } from "../lib/http.ts";
import { pageContext, renderPage } from "../lib/render.tsx";
import {
  clearSessionCookie,
  deviceTokens,
  getAuth,
  sessionToken,
  setDeviceCookie,
  setSessionCookie,
} from "../lib/auth.ts";
import { parseEmail } from "../lib/email.ts";
import { cleanText, humanWait, textProblem } from "../lib/text.ts";
import { hashPassword, passwordProblem, verifyDummy, verifyPassword } from "../lib/password.ts";
import { randomToken, sha256Hex } from "../lib/crypto.ts";
import { addTrustedDevice, trustedTokenFor } from "../kv/devices.ts";
import { createAccount, getUser, type User } from "../kv/users.ts";
import * as keys from "../kv/keys.ts";
import { addSession, newSession, revokeSessionByToken } from "../kv/sessions.ts";
import { getWorkspace, listUserWorkspaces } from "../kv/workspaces.ts";
import { addRelease, releaseAttempt, reserveAttempt, settleFailure } from "../kv/rate_limits.ts";
import { errorResponse } from "./errors.tsx";
import { breadcrumb } from "../lib/observability.ts";
import { reserveAddressMail, signupVerificationMail } from "../lib/mail/flows.ts";

/** Most characters in a display name. */
export const NAME_MAX = 100;

const NOTICES: Record<string, string> = {
  signed_out: "You have signed out.",
  expired: "Your session has expired. Please sign in again.",
  password_reset:
    "Your password was changed and every session was signed out. Sign in with your new password.",
  password_changed:
    "Your password was just changed on another device, which signed you out here. Sign in with the new password.",
  revoked: "You were signed out from another device. Sign in again to continue.",
};

interface SignupValues {
  email: string;
  name: string;
}

function SignupPage(
  { page, values, errors, formError, next }: {
    page: PageContext;
    values: SignupValues;
    errors: Partial<Record<"email" | "name" | "password", ComponentChildren>>;
    formError?: string;
    next: string;
  },
) {
  return (
    <Layout page={page} title="Create your account" narrow>
      <section class="card">
        <h1>Create your account</h1>
        {formError && <Alert kind="error">{formError}</Alert>}
        <form method="post" action="/signup" novalidate>
          <input type="hidden" name="next" value={next} />
          <Field
            label="Email"
            name="email"
            type="email"
            value={values.email}
            error={errors.email}
            autocomplete="email"
            required
            autofocus={!values.email || !!errors.email}
          />
          <Field
            label="Name (optional)"
            name="name"
            value={values.name}
            error={errors.name}
            autocomplete="name"
          />
          <NewPasswordField error={errors.password} autofocus={!!values.email && !errors.email} />
          <button type="submit" class="button primary">Create account</button>
        </form>
        <p class="muted">
          Already have an account? <a href={withNext("/login", next)}>Sign in</a>
        </p>
      </section>
    </Layout>
  );
}

/** A link to sign-in or sign-up that keeps where the person was going. */
function withNext(path: "/login" | "/signup", next: string): string {
  return next !== "/" ? `${path}?next=${encodeURIComponent(next)}` : path;
}

function LoginPage(
  { page, email, error, credentialsRefused, notice, next }: {
    page: PageContext;
    email: string;
    error?: string;
    /** The error is about what was typed (not, say, a rate limit): mark the fields invalid. */
    credentialsRefused?: boolean;
    notice?: string;
    next: string;
  },
) {
  const describedBy = error ? "login-error" : undefined;
  return (
    <Layout page={page} title="Sign in" narrow>
      <section class="card">
        <h1>Sign in to Lodge</h1>
        {notice && <Alert kind="info">{notice}</Alert>}
        {error && <Alert kind="error" id="login-error">{error}</Alert>}
        <form method="post" action="/login" novalidate>
          <input type="hidden" name="next" value={next} />
          <Field
            label="Email"
            name="email"
            type="email"
            value={email}
            autocomplete="username"
            required
            autofocus={!email}
            describedBy={describedBy}
            invalid={credentialsRefused}
          />
          <Field
            label="Password"
            name="password"
            type="password"
            autocomplete="current-password"
            required
            autofocus={!!email}
            describedBy={describedBy}
            invalid={credentialsRefused}
          />
          <button type="submit" class="button primary">Sign in</button>
        </form>
        <p class="muted">
          <a href="/password/forgot">Forgot your password?</a>
        </p>
        <p class="muted">
          New to Lodge?{" "}
          <a href={withNext("/signup", next)}>
            Create an account
          </a>
        </p>
      </section>
    </Layout>
  );
}

/** Where a signed-in user lands: their default workspace, else their first, else home. */
export async function landingPath(kv: Deno.Kv, user: User): Promise<string> {
  const ws = await getWorkspace(kv, user.defaultWorkspaceId);
  if (ws) return `/w/${encodeURIComponent(ws.slug)}`;
  const [first] = await listUserWorkspaces(kv, user.id, 1);
  return first ? `/w/${encodeURIComponent(first.slug)}` : "/account";
}

function clientMeta(c: Ctx) {
  return {
    userAgent: cleanText(c.req.header("user-agent") ?? "").slice(0, 512),
    ip: c.get("clientIp"),
  };
}

/** Routes: /signup, /login, /logout. */
export function authRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get("/signup", async (c) => {
    const auth = await getAuth(c);
    const next = safeNext(c.req.query("next"));
    if (auth.ok) {
      return c.redirect(next !== "/" ? next : await landingPath(c.get("kv"), auth.user), 303);
    }
    return renderPage(
      c,
      <SignupPage page={pageContext(c)} values={{ email: "", name: "" }} errors={{}} next={next} />,
    );
  });

  app.post("/signup", async (c) => {
    const form = await readForm(c, ["email", "password", "name", "next"]);
    const f = form.fields;
    const next = safeNext(f.get("next"));
    const values = {
      email: cleanText(f.get("email")).slice(0, 300),
      name: cleanText(f.get("name")),
    };
    if (!form.ok) {
      return renderPage(
        c,
        <SignupPage
          page={pageContext(c)}
          values={values}
          errors={{}}
          formError={form.message}
          next={next}
        />,
        form.status,
      );
    }
    const errors: Partial<Record<"email" | "name" | "password", string>> = {};
    const email = parseEmail(f.get("email"));
    if (!email.ok) errors.email = email.error;
    const nameProblem = textProblem(values.name, { max: NAME_MAX });
    if (nameProblem) {
      errors.name = `Your name ${nameProblem}.`;
      values.name = values.name.slice(0, NAME_MAX * 2);
    }
    // Not the address or name just typed: the first guesses of anyone who knows either.
    const pwProblem = passwordProblem(f.get("password"), values);
    if (pwProblem) errors.password = pwProblem;
    if (!email.ok || nameProblem || pwProblem) {
      return renderPage(
        c,
        <SignupPage
          page={pageContext(c)}
          values={values}
          errors={errors}
          formError="Please fix the highlighted fields."
          next={next}
        />,
        422,
      );
    }
    const kv = c.get("kv");
    const config = c.get("config");
    // Each attempt costs a password hash and answers whether an address is taken: limit
    // attempts per client address.
    const reservation = await reserveAttempt(
      kv,
      [
        { bucket: "signup-ip", subject: limitedClient(c.get("clientIp")) },
      ],
      config.signupRateLimitMax,
      config.signupRateLimitWindow,
    );
    if (!reservation.ok) {
      c.header("Retry-After", String(reservation.retryAfter));
      return renderPage(
        c,
        <SignupPage
          page={pageContext(c)}
          values={values}
          errors={{}}
          formError={`Too many sign-up attempts from your network. Try again in ${
            humanWait(reservation.retryAfter)
          }.`}
          next={next}
        />,
        429,
      );
    }
    const passwordHash = await hashPassword(f.get("password"));
    const device = randomToken(); // minted here, never one the browser chose (kv/devices.ts)
    const verificationMail = signupVerificationMail(config);
    const result = await createAccount(kv, config, {
      email: email.display,
      emailKey: email.key,
      name: values.name,
      passwordHash,
      ...clientMeta(c),
      deviceHash: sha256Hex(device),
      addToAtomic: (op, user) => {
        verificationMail(op, user);
        // The browser that created the account is trusted for it (see kv/devices.ts).
        addTrustedDevice(op, user.id, device);
      },
    });
    if (!result.ok) {
      return renderPage(
        c,
        <SignupPage
          page={pageContext(c)}
          values={values}
          errors={{
            email: (
              <>
                An account with this email address already exists.{" "}
                <a href={withNext("/login", next)}>
                  Sign in instead
                </a>.
              </>
            ),
          }}
          next={next}
        />,
        409,
      );
    }
    // The verification mail just queued counts toward the address's hourly mail limit.
    await reserveAddressMail(kv, config, email.key);
    const old = sessionToken(c);
    // Other tabs of the old account must learn why: this browser is now someone else.
    if (old) await revokeSessionByToken(kv, old, () => "switched_account", config);
    setSessionCookie(c, result.session.token);
    setDeviceCookie(c, device);
    return c.redirect(
      next !== "/" ? next : `/w/${encodeURIComponent(result.workspace.slug)}`,
      303,
    );
  });

  app.get("/login", async (c) => {
    const next = safeNext(c.req.query("next"));
    const auth = await getAuth(c);
    if (auth.ok) {
      return c.redirect(next !== "/" ? next : await landingPath(c.get("kv"), auth.user), 303);
    }
    const notice = ownEntry(NOTICES, c.req.query("m"));
    // After a sign-out, the banner island on this page tells the browser's other tabs.
    const page = pageContext(c, { announceSignedOut: c.req.query("m") === "signed_out" });
    return renderPage(c, <LoginPage page={page} email="" notice={notice} next={next} />);
  });

  app.post("/login", async (c) => {
    const form = await readForm(c, ["email", "password", "next"]);
    const f = form.fields;
    const next = safeNext(f.get("next"));
    const typed = cleanText(f.get("email")).slice(0, 300);
    const password = f.get("password");
    const page = (status: 400 | 401 | 415 | 422 | 429, error: string) =>
      renderPage(
        c,
        <LoginPage
          page={pageContext(c)}
          email={typed}
          error={error}
          credentialsRefused={status === 401 || status === 422}
          next={next}
        />,
        status,
      );

    // A form that could not be read as sent: the page again, with what could be read.
    if (!form.ok) return page(form.status, form.message);
    if (!typed || !password) return page(422, "Enter your email address and password.");
    if (password.length > 4096) return page(401, "The email address or password is incorrect.");
    const email = parseEmail(typed);
    const key = email.ok ? email.key : typed.toLowerCase();
    const config = c.get("config");
    const kv = c.get("kv");

    // A browser that signed in to this account before has limits of its own: strangers' failures
    // at this address, or a crowd behind the same network, cannot lock its owner out of it.
    const trusted = email.ok ? await trustedTokenFor(kv, email.key, deviceTokens(c)) : null;
    // The email index is read with the counters: one round trip fewer per sign-in.
    const reservation = await reserveAttempt(
      kv,
      trusted ? [{ bucket: "login-device", subject: sha256Hex(trusted) }] : [
        { bucket: "login-account", subject: sha256Hex(key) },
        { bucket: "login-ip", subject: limitedClient(c.get("clientIp")) },
      ],
      config.loginRateLimitMax,
      config.loginRateLimitWindow,
      { pending: true, alsoRead: email.ok ? [keys.userByEmail(email.key)] : [] },
    );
    if (!reservation.ok) {
      const busy = reservation.reason === "busy";
      breadcrumb("auth", "sign-in refused", { reason: busy ? "busy" : "rate_limited" }, "warning");
      c.header("Retry-After", String(reservation.retryAfter));
      if (busy) {
        // Only attempts still being checked fill the window: they end within seconds.
        return page(
          429,
          "Several sign-ins for this account or from your network are being checked right now. Try again in a few seconds.",
        );
      }
      return page(
        429,
        `Too many failed sign-in attempts. Try again in ${humanWait(reservation.retryAfter)}.`,
      );
    }

    const userId = reservation.alsoRead[0]?.value;
    let user: User | null = null;
    let valid = false;
    try {
      user = typeof userId === "string" ? await getUser(kv, userId) : null;
      valid = user?.passwordHash
        ? await verifyPassword(user.passwordHash, password)
        : await verifyDummy(password);
    } catch (err) {
      await settleFailure(kv, reservation); // an attempt that broke counts, and is not in flight
      throw err;
    }
    if (!user || !valid) {
      // The same work for an unknown account and a wrong password: the slot stays used.
      await settleFailure(kv, reservation);
      breadcrumb("auth", "sign-in failed", {
        reason: user ? "bad_password" : "unknown_account",
        userId: user?.id ?? null,
      }, "warning");
      return page(401, "The email address or password is incorrect.");
    }

    const old = sessionToken(c);
    if (old) {
      // Other tabs of an old account must learn why: this browser is now someone else.
      await revokeSessionByToken(
        kv,
        old,
        (s) => s.userId === user.id ? "logout" : "switched_account",
        config,
      );
    }
    // A success is not a failure: the slots go back in the same atomic as the new session
    // (one write, no second read), or after it when another attempt moved the counters.
    // This browser is now trusted for this account (renewed at every sign-in), with the session.
    const device = trusted ?? randomToken();
    const session = newSession(config, {
      userId: user.id,
      ...clientMeta(c),
      deviceHash: sha256Hex(device),
    });
    const op = addTrustedDevice(addSession(kv.atomic(), config, session), user.id, device);
    if (!addRelease(op, reservation) || !(await op.commit()).ok) {
      const retry = addTrustedDevice(addSession(kv.atomic(), config, session), user.id, device);
      if (!(await retry.commit()).ok) throw new Error("session token collision");
      await releaseAttempt(kv, reservation);
    }
    setSessionCookie(c, session.token);
    setDeviceCookie(c, device);
    return c.redirect(next !== "/" ? next : await landingPath(kv, user), 303);
  });

  app.post("/logout", async (c) => {
    const token = sessionToken(c);
    if (token) await revokeSessionByToken(c.get("kv"), token, "logout", c.get("config"));
    clearSessionCookie(c);
    return c.redirect("/login?m=signed_out", 303);
  });

  app.all("/logout", (c) => {
    c.header("Allow", "POST");
    return errorResponse(c, 405, "Use the “Sign out” button to sign out.");
  });

  return app;
}
