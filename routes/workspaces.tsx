/**
 * Workspace pages. `GET /w/:slug` is for members only: anyone else gets the same 404 as
 * for a workspace that does not exist.
 *
 * The page reads everything it needs in one `kv.getMany` (session, user, slug index,
 * workspace, membership, and the user's switcher entries by key), using in-process hints
 * for the ids; the user's workspace-list counter, read in the same getMany, proves the
 * cached id list still holds. When a hint is missing or stale it falls back to sequential
 * reads, which refill the hints.
 *
 * @example
 * ```ts
 * app.route("/", workspaceRoutes());
 * ```
 * @module
 */
import { Hono } from "hono";
import { Layout, type PageContext } from "../components/Layout.tsx";
import type { AppEnv, Ctx } from "../lib/http.ts";
import { pageContext, renderPage } from "../lib/render.tsx";
import { getAuth, sessionToken, setAuth, type SignedIn, signInRequired } from "../lib/auth.ts";
import { sha256Hex } from "../lib/crypto.ts";
import * as keys from "../kv/keys.ts";
import { acceptSession, type Session, sessionHints } from "../kv/sessions.ts";
import type { User } from "../kv/users.ts";
import {
  getWorkspaceForMember,
  listUserWorkspacesAndHint,
  type Membership,
  slugHints,
  type UserWorkspace,
  userWorkspaceHints,
  type Workspace,
} from "../kv/workspaces.ts";
import { errorResponseForUser } from "./errors.tsx";
import { landingPath } from "./auth.tsx";
import { verificationRequiredPage } from "./verify_email.tsx";

/** Everything the workspace page shows. */
export interface WorkspaceView {
  user: User;
  workspace: Workspace;
  membership: Membership;
  workspaces: UserWorkspace[];
}

/** The workspace page body. */
export function WorkspacePage({ page, view }: { page: PageContext; view: WorkspaceView }) {
  const { workspace, membership } = view;
  const others = view.workspaces.filter((w) => w.workspaceId !== workspace.id);
  return (
    <Layout page={page} title={workspace.name}>
      <section class="workspace-head">
        <p class="eyebrow">Workspace</p>
        <h1>{workspace.name}</h1>
        <p class="muted">
          You are <strong>{membership.role}</strong> of this workspace
          {workspace.personal && " (your personal workspace)"} · created{" "}
          <time dateTime={new Date(workspace.createdAt).toISOString()}>
            {new Date(workspace.createdAt).toISOString().slice(0, 10)}
          </time>
        </p>
      </section>
      <section class="grid">
        <article class="card">
          <h2>Welcome, {view.user.name || view.user.email}</h2>
          <p>
            This is where your team's work lives. Everything here is visible only to members of{" "}
            <strong>{workspace.name}</strong>.
          </p>
        </article>
        <article class="card">
          <h2>Your workspaces</h2>
          {others.length === 0
            ? <p class="muted">This is your only workspace so far.</p>
            : (
              <ul class="plain">
                {others.map((w) => (
                  <li key={w.workspaceId}>
                    <a href={`/w/${encodeURIComponent(w.slug)}`}>{w.name}</a>{" "}
                    <small class="muted">{w.role}</small>
                  </li>
                ))}
              </ul>
            )}
        </article>
        {(membership.role === "owner" || membership.role === "admin") && (
          <article class="card">
            <h2>Your data</h2>
            <p>
              <a href={`/w/${encodeURIComponent(workspace.slug)}/export`} download>
                Export this workspace
              </a>{" "}
              <small class="muted">(JSON: members, invitations, audit log)</small>
            </p>
          </article>
        )}
      </section>
    </Layout>
  );
}

/** Renders the page for a loaded view. */
export function renderWorkspace(c: Ctx, view: WorkspaceView): Response {
  const page = pageContext(c, {
    user: { name: view.user.name, email: view.user.email, id: view.user.id },
    switcher: {
      current: { slug: view.workspace.slug, name: view.workspace.name },
      workspaces: view.workspaces.map((w) => ({ slug: w.slug, name: w.name, role: w.role })),
    },
  });
  return renderPage(c, <WorkspacePage page={page} view={view} />);
}

type Loaded =
  | { ok: true; auth: SignedIn; view: WorkspaceView | null }
  | { ok: false; reason: "missing" | "unknown" | "idle_timeout" | "expired" };

/** Deno KV's getMany takes at most this many keys. */
const GET_MANY_MAX = 10;

/** Reads any number of keys: one getMany per 10, all at once. */
async function getManyChunked(
  kv: Deno.Kv,
  list: Deno.KvKey[],
): Promise<Deno.KvEntryMaybe<unknown>[]> {
  if (list.length <= GET_MANY_MAX) return await kv.getMany<unknown[]>(list);
  const chunks: Deno.KvKey[][] = [];
  for (let i = 0; i < list.length; i += GET_MANY_MAX) chunks.push(list.slice(i, i + GET_MANY_MAX));
  return (await Promise.all(chunks.map((c) => kv.getMany<unknown[]>(c)))).flat();
}

/**
 * Fast path: ONE getMany (for up to four workspaces) of the session, user, slug index,
 * workspace, membership, the user's workspace-list counter and their switcher entries by
 * key, when the hints are present. Null when a hint turns out stale (the caller falls back).
 */
async function loadWithHints(c: Ctx, tokenHash: string, slug: string): Promise<Loaded | null> {
  const userId = sessionHints.get(tokenHash);
  const wsId = slugHints.get(slug);
  const listHint = userId ? userWorkspaceHints.get(userId) : undefined;
  if (!userId || !wsId || !listHint) return null;
  const kv = c.get("kv");
  const entries = await getManyChunked(kv, [
    keys.session(tokenHash),
    keys.user(userId),
    keys.workspaceBySlug(slug),
    keys.workspace(wsId),
    keys.membership(wsId, userId),
    keys.userWorkspacesVersion(userId),
    ...listHint.ids.map((id) => keys.userWorkspace(userId, id)),
  ]);
  const [sessionE, userE, slugE, wsE, memberE, versionE] = entries as [
    Deno.KvEntryMaybe<Session>,
    Deno.KvEntryMaybe<User>,
    Deno.KvEntryMaybe<string>,
    Deno.KvEntryMaybe<Workspace>,
    Deno.KvEntryMaybe<Membership>,
    Deno.KvEntryMaybe<unknown>,
  ];
  if (sessionE.value && sessionE.value.userId !== userId) return null;
  if (slugE.value !== wsId) {
    slugHints.delete(slug);
    return null;
  }
  if (versionE.versionstamp !== listHint.versionstamp) {
    userWorkspaceHints.delete(userId);
    return null;
  }
  const session = await acceptSession(kv, c.get("config"), tokenHash, sessionE);
  if (!session.ok) return session;
  if (!userE.value) return { ok: false, reason: "unknown" };
  const auth: SignedIn = { ok: true, session: session.session, tokenHash, user: userE.value };
  // Unchanged counter: the same set of entries; their values (names, roles) are fresh.
  const workspaces = entries.slice(6).map((e) => e.value as UserWorkspace | null)
    .filter((w): w is UserWorkspace => w !== null);
  const view = wsE.value && memberE.value
    ? { user: userE.value, workspace: wsE.value, membership: memberE.value, workspaces }
    : null;
  return { ok: true, auth, view };
}

/** Slow path: session, then user, then workspace and membership. Fills the hints. */
async function loadSequential(c: Ctx, slug: string): Promise<Loaded> {
  const auth = await getAuth(c);
  if (!auth.ok) return auth;
  sessionHints.set(auth.tokenHash, auth.user.id);
  const kv = c.get("kv");
  const [member, workspaces] = await Promise.all([
    getWorkspaceForMember(kv, slug, auth.user.id),
    listUserWorkspacesAndHint(kv, auth.user.id),
  ]);
  const view = member ? { user: auth.user, ...member, workspaces } : null;
  return { ok: true, auth, view };
}

/** Loads the workspace page's data for the request's session. */
export async function loadWorkspaceView(c: Ctx, slug: string): Promise<Loaded> {
  const token = sessionToken(c);
  if (!token) return { ok: false, reason: "missing" };
  const fast = await loadWithHints(c, sha256Hex(token), slug);
  if (fast) {
    if (fast.ok) setAuth(c, fast.auth);
    return fast;
  }
  return loadSequential(c, slug);
}

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

/** Routes: /, /w/:slug. */
export function workspaceRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get("/", async (c) => {
    const auth = await getAuth(c);
    if (!auth.ok) return c.redirect("/login", 303);
    return c.redirect(await landingPath(c.get("kv"), auth.user), 303);
  });

  app.get("/w/:slug", async (c) => {
    const slug = c.req.param("slug");
    const loaded = await loadWorkspaceView(c, SLUG.test(slug) ? slug : "-");
    if (!loaded.ok) return signInRequired(c, loaded.reason);
    if (!loaded.view) return await errorResponseForUser(c, 404);
    // EMAIL_VERIFICATION_REQUIRED: an unconfirmed address opens only its personal workspace.
    if (
      c.get("config").emailVerificationRequired && !loaded.view.user.emailVerifiedAt &&
      !loaded.view.workspace.personal
    ) return verificationRequiredPage(c);
    return renderWorkspace(c, loaded.view);
  });

  return app;
}
