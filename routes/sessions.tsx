/**
 * Managing sessions and the password: `/account/sessions` lists every signed-in device with
 * "Sign out" per device and "Sign out all other devices"; `/account/password` changes the
 * password and signs every other device out (their banners say "password changed").
 * Plain forms that post and redirect: no JavaScript needed.
 *
 * @example
 * ```ts
 * app.route("/", sessionRoutes());
 * ```
 * @module
 */
import { enqueueMail } from "../lib/mail/outgoing.ts";
import { Hono } from "hono";
import { Layout, type PageContext } from "../components/Layout.tsx";
import { Alert, Field, NewPasswordField } from "../components/Form.tsx";
import { type AppEnv, type Ctx, ownEntry, readForm } from "../lib/http.ts";
import { pageContextWithUser, renderPage } from "../lib/render.tsx";
import {
  clearSessionCookie,
  getAuth,
  keepOnlyThisBrowsersTrust,
  type SignedIn,
  signInRequired,
  trustOnlyThisBrowser,
} from "../lib/auth.ts";
import { hashPassword, passwordProblem } from "../lib/password.ts";
import { describeUserAgent } from "../lib/user_agent.ts";
import { breadcrumb } from "../lib/observability.ts";
import {
  endExpiredSessions,
  getUserSession,
  listSessions,
  peekSession,
  revokeAllSessions,
  revokeSessionById,
  revokeSessionByToken,
  type Session,
} from "../kv/sessions.ts";
import { forgetTrustedDevice } from "../kv/devices.ts";
import { changePassword } from "../kv/users.ts";
import { verifyCurrentPassword } from "../lib/reauth.ts";
import { sessionToken } from "../lib/auth.ts";
import { errorResponse, errorResponseForUser } from "./errors.tsx";

const NOTICES: Record<string, string> = {
  revoked: "That device has been signed out.",
  revoked_others: "Every other device has been signed out.",
  password_changed: "Your password has been changed. Every other device has been signed out.",
};

const SESSION_ID = /^[0-9a-hjkmnp-tv-z]{26}$/;

function when(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

function SessionsPage(
  { page, sessions, currentId, notice }: {
    page: PageContext;
    sessions: Session[];
    currentId: string;
    notice?: string;
  },
) {
  const others = sessions.filter((s) => s.id !== currentId).length;
  return (
    <Layout page={page} title="Your sessions">
      <section class="card">
        <h1>Where you're signed in</h1>
        {notice && <Alert kind="success">{notice}</Alert>}
        <table class="sessions">
          <caption class="visually-hidden">Your signed-in devices</caption>
          <thead>
            <tr>
              <th scope="col">Device</th>
              <th scope="col">Address</th>
              <th scope="col">Signed in</th>
              <th scope="col">Last seen</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {sessions.map((s) => (
              <tr key={s.id} data-session-id={s.id}>
                <td>
                  {describeUserAgent(s.userAgent)}
                  {s.id === currentId && <strong class="badge">This device</strong>}
                </td>
                <td>{s.ip}</td>
                {/* data-label: the column's name, shown when a phone stacks the cells. */}
                <td data-label="Signed in">
                  <time dateTime={new Date(s.createdAt).toISOString()}>{when(s.createdAt)}</time>
                </td>
                <td data-label="Last seen">
                  <time dateTime={new Date(s.lastSeenAt).toISOString()}>{when(s.lastSeenAt)}</time>
                </td>
                <td>
                  <form
                    method="post"
                    action={`/account/sessions/${s.id}/revoke`}
                    class="inline"
                    data-signout={s.id === currentId ? "this-browser" : undefined}
                  >
                    <button type="submit" class="button small">
                      {s.id === currentId ? "Sign out" : "Sign out this device"}
                      {
                        /* Each button names its device for screen readers (one row's button
                          otherwise sounds like every other's). */
                      }
                      <span class="visually-hidden">
                        {`: ${describeUserAgent(s.userAgent)}, ${s.ip}, last seen ${
                          when(s.lastSeenAt)
                        }`}
                      </span>
                    </button>
                  </form>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {others > 0 && (
          <form method="post" action="/account/sessions/revoke-others">
            <button type="submit" class="button">Sign out all other devices</button>
          </form>
        )}
        <p class="muted">
          <a href="/account/password">Change your password</a>{" "}
          — this also signs out every other device.
        </p>
      </section>
    </Layout>
  );
}

function PasswordPage(
  { page, errors, formError }: {
    page: PageContext;
    errors: Partial<Record<"current" | "password", string>>;
    formError?: string;
  },
) {
  return (
    <Layout page={page} title="Change your password" narrow>
      <section class="card">
        <h1>Change your password</h1>
        {formError && <Alert kind="error">{formError}</Alert>}
        <form method="post" action="/account/password" novalidate>
          <Field
            label="Current password"
            name="current"
            type="password"
            error={errors.current}
            autocomplete="current-password"
            required
            autofocus={!errors.password}
          />
          <NewPasswordField
            label="New password"
            error={errors.password}
            hint="At least 8 characters. Every other device will be signed out."
            autofocus={!!errors.password}
          />
          <button type="submit" class="button primary">Change password</button>
        </form>
        <p class="muted">
          <a href="/account/sessions">Back to your sessions</a>
        </p>
      </section>
    </Layout>
  );
}

async function requireAuth(c: Ctx): Promise<SignedIn | Response> {
  const auth = await getAuth(c);
  return auth.ok ? auth : await signInRequired(c, auth.reason);
}

/**
 * Routes: /account/sessions (+ revoke, revoke-others), /account/password.
 *
 * @example
 * ```ts
 * app.route("/", sessionRoutes());
 * ```
 */
export function sessionRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get("/account/sessions", async (c) => {
    const auth = await requireAuth(c);
    if (auth instanceof Response) return auth;
    const sessions = await listSessions(c.get("kv"), auth.user.id, c.get("config"));
    sessions.sort((a, b) =>
      (a.id === auth.session.id ? -1 : b.id === auth.session.id ? 1 : 0) ||
      b.lastSeenAt - a.lastSeenAt
    );
    return renderPage(
      c,
      <SessionsPage
        page={await pageContextWithUser(c)}
        sessions={sessions}
        currentId={auth.session.id}
        notice={ownEntry(NOTICES, c.req.query("m"))}
      />,
    );
  });

  app.post("/account/sessions/revoke-others", async (c) => {
    const auth = await requireAuth(c);
    if (auth instanceof Response) return auth;
    await endExpiredSessions(c.get("kv"), c.get("config"), auth.user.id);
    await revokeAllSessions(c.get("kv"), auth.user.id, auth.session.id, "signed_out_everywhere");
    // Other browsers also lose their own sign-in budget for this account (kv/devices.ts); this
    // one gets no new budget (a session alone must not mint them).
    await keepOnlyThisBrowsersTrust(c, auth.user.id);
    return c.redirect("/account/sessions?m=revoked_others", 303);
  });

  app.post("/account/sessions/:id/revoke", async (c) => {
    const auth = await requireAuth(c);
    if (auth instanceof Response) return auth;
    const id = c.req.param("id");
    if (!SESSION_ID.test(id)) return await errorResponseForUser(c, 404);
    const kv = c.get("kv");
    if (id === auth.session.id) {
      const token = sessionToken(c);
      if (token) await revokeSessionByToken(kv, token, "logout", c.get("config"));
      clearSessionCookie(c);
      return c.redirect("/login?m=signed_out", 303);
    }
    const target = await getUserSession(kv, auth.user.id, id);
    const done = await revokeSessionById(kv, auth.user.id, id, "revoked", c.get("config"));
    // That browser also loses its own sign-in budget for this account (a lost laptop).
    if (done && target?.deviceHash) await forgetTrustedDevice(kv, auth.user.id, target.deviceHash);
    if (!done) {
      return await errorResponseForUser(
        c,
        404,
        "That session has already ended, or is not yours.",
      );
    }
    return c.redirect("/account/sessions?m=revoked", 303);
  });

  app.get("/account/password", async (c) => {
    const auth = await requireAuth(c);
    if (auth instanceof Response) return auth;
    return renderPage(c, <PasswordPage page={await pageContextWithUser(c)} errors={{}} />);
  });

  app.post("/account/password", async (c) => {
    const auth = await requireAuth(c);
    if (auth instanceof Response) return auth;
    const form = await readForm(c, ["current", "password"]);
    if (!form.ok) return errorResponse(c, form.status, form.message);
    const current = form.fields.get("current");
    const password = form.fields.get("password");
    const page = async (
      status: 422 | 429,
      errors: Partial<Record<"current" | "password", string>>,
      formError = "Please fix the highlighted fields.",
    ) =>
      renderPage(
        c,
        <PasswordPage page={await pageContextWithUser(c)} errors={errors} formError={formError} />,
        status,
      );

    const errors: Partial<Record<"current" | "password", string>> = {};
    if (!current) errors.current = "Enter your current password.";
    const problem = passwordProblem(password, { email: auth.user.email, name: auth.user.name });
    if (problem) errors.password = problem;
    if (errors.current || errors.password) return await page(422, errors);

    const user = auth.user;
    if (!user.passwordHash) {
      return await page(422, {}, "This account signs in without a password.");
    }
    const config = c.get("config");
    const kv = c.get("kv");
    const check = await verifyCurrentPassword(c, user, current, "password change");
    if (!check.ok) {
      return check.status === 429
        ? await page(429, {}, check.message)
        : await page(422, { current: check.message });
    }
    // Only now is "the same as the current one" known to be about the real password.
    if (password === current) {
      return await page(422, { password: "Choose a password different from your current one." });
    }
    const newHash = await hashPassword(password);
    // Sessions that had already ended keep their own reason, not "password changed".
    await endExpiredSessions(kv, config, user.id);
    const result = await changePassword(kv, user.id, {
      currentHash: user.passwordHash,
      newHash,
      keepSessionId: auth.session.id,
      // The owner hears of it by mail, so a change made by someone else does not go unseen.
      addToAtomic: (op, account) => {
        enqueueMail(op, account.email, {
          kind: "password_changed",
          forgotUrl: new URL("/password/forgot", c.get("config").appUrl).href,
        });
      },
    });
    if (!result.ok) {
      // Changed on another device at the same moment, which may have signed this one out:
      // then say so on the sign-in page, not "reload" on a form this session can no longer use.
      const still = await peekSession(kv, config, sessionToken(c));
      if (!still.ok) {
        clearSessionCookie(c);
        const params = new URLSearchParams({ next: "/account/password", m: "password_changed" });
        return c.redirect(`/login?${params}`, 303);
      }
      return await page(
        422,
        {},
        "Your password was changed elsewhere a moment ago. Reload and try again.",
      );
    }
    breadcrumb("auth", "password changed", { userId: user.id, revoked: result.revoked });
    // Whoever knew the old password keeps no sign-in budget of their own (kv/devices.ts).
    await trustOnlyThisBrowser(c, user.id);
    return c.redirect("/account/sessions?m=password_changed", 303);
  });

  return app;
}
