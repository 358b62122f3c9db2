/**
 * The account page and the JSON `GET /api/me`.
 *
 * @example
 * ```ts
 * app.route("/", accountRoutes());
 * ```
 * @module
 */
import { Hono } from "hono";
import { Layout } from "../components/Layout.tsx";
import type { AppEnv } from "../lib/http.ts";
import { pageContextWithUser, renderPage } from "../lib/render.tsx";
import { getAuth, signInRequired } from "../lib/auth.ts";
import { listUserWorkspaces } from "../kv/workspaces.ts";
import { EmailStatus } from "../components/EmailStatus.tsx";

/** Routes: /account, /api/me. */
export function accountRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get("/account", async (c) => {
    const auth = await getAuth(c);
    if (!auth.ok) return signInRequired(c, auth.reason);
    const page = await pageContextWithUser(c);
    return renderPage(
      c,
      <Layout page={page} title="Your account">
        <section class="card">
          <h1>Your account</h1>
          <dl class="facts">
            <dt>Email</dt>
            <dd>{auth.user.email}</dd>
            <dt>Name</dt>
            <dd>{auth.user.name || <span class="muted">not set</span>}</dd>
            <dt>Member since</dt>
            <dd>{new Date(auth.user.createdAt).toISOString().slice(0, 10)}</dd>
          </dl>
          <p>
            <a href="/account/sessions">Where you're signed in</a> ·{" "}
            <a href="/account/password">Change your password</a>
          </p>
        </section>
        <EmailStatus user={auth.user} notice={c.req.query("email")} />
      </Layout>,
    );
  });

  app.get("/api/me", async (c) => {
    const auth = await getAuth(c);
    if (!auth.ok) return signInRequired(c, auth.reason);
    const workspaces = await listUserWorkspaces(c.get("kv"), auth.user.id);
    c.header("Cache-Control", "no-store");
    return c.json({
      user: { id: auth.user.id, email: auth.user.email, name: auth.user.name },
      workspaces: workspaces.map((w) => ({ slug: w.slug, name: w.name, role: w.role })),
    });
  });

  return app;
}
