/**
 * The three servers the benchmark compares, each a real `Deno.serve` on a free port of
 * 127.0.0.1, and the fixture they share (a signed-up user with three workspaces, and
 * accounts for the sign-in phase) in one SQLite-backed Deno KV.
 *
 * - {@link startCeiling}: bare `Deno.serve` answering "ok" (the machine's ceiling).
 * - {@link startFloor}: the workspace page rendered by the same components
 *   (`WorkspacePage`) behind ONE `kv.getMany` of every key it needs, with the same
 *   response headers: the floor cost of any authenticated page.
 * - {@link startApp}: the real `createApp` (all middleware, real session).
 *
 * @example
 * ```ts
 * const app = await startApp(kv, config, assets);
 * const fixture = await prepareFixture(app.url, kv, config, 8);
 * const floor = startFloor(kv, config, assets, fixture);
 * ```
 * @module
 */
import { renderToString } from "preact-render-to-string";
import { createApp } from "../app.ts";
import type { Config } from "../lib/config.ts";
import type { Assets } from "../lib/assets.ts";
import { sessionCookieName } from "../lib/auth.ts";
import { sha256Hex } from "../lib/crypto.ts";
import * as keys from "../kv/keys.ts";
import { type Session, sessionExpiry } from "../kv/sessions.ts";
import type { User } from "../kv/users.ts";
import {
  addWorkspace,
  type Membership,
  newWorkspace,
  type UserWorkspace,
  type Workspace,
} from "../kv/workspaces.ts";
import { WorkspacePage } from "../routes/workspaces.tsx";

/** A server under test. */
export interface BenchServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  shutdown(): Promise<void>;
}

function serve(handler: Deno.ServeHandler): BenchServer {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  const { port } = server.addr as Deno.NetAddr;
  return { url: `http://127.0.0.1:${port}`, shutdown: () => server.shutdown() };
}

/** (a) A bare `Deno.serve` answering "ok". */
export function startCeiling(): BenchServer {
  return serve(() => new Response("ok"));
}

/** (c) The real app, served exactly as main.ts serves it. */
export function startApp(kv: Deno.Kv, config: Config, assets: Assets): BenchServer {
  const app = createApp({ config, kv, assets });
  return serve(app.fetch);
}

/** What the phases need: the signed-in user's cookie and page, and sign-in accounts. */
export interface Fixture {
  cookie: string;
  token: string;
  userId: string;
  slug: string;
  workspaceName: string;
  /** The user's workspace ids, in key order (the switcher's order). */
  workspaceIds: string[];
  /** Accounts for the sign-in phase (same password each). */
  logins: { email: string; password: string }[];
  /** Headers of a real workspace page answer (the floor server copies them). */
  pageHeaders: [string, string][];
  /** Bytes of the real page, to check the phases served the page and not a redirect. */
  pageBytes: number;
}

/** The password of every bench account (not on the common-passwords list). */
export const BENCH_PASSWORD = "quiet-lantern-48-orchard";

async function signup(appUrl: string, origin: string, email: string, name: string) {
  const res = await fetch(`${appUrl}/signup`, {
    method: "POST",
    headers: { origin, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ email, password: BENCH_PASSWORD, name }),
    redirect: "manual",
  });
  await res.body?.cancel();
  if (res.status !== 303) throw new Error(`bench sign-up failed: ${res.status}`);
  return res;
}

/**
 * Signs a user up through the real app (real cookie, real session), gives them two more
 * workspaces (three in the switcher), and signs up `logins` accounts for the sign-in phase.
 */
export async function prepareFixture(
  appUrl: string,
  kv: Deno.Kv,
  config: Config,
  logins: number,
): Promise<Fixture> {
  const origin = config.appUrl.origin;
  const res = await signup(appUrl, origin, "bench.owner@example.com", "Bench Owner");
  const name = sessionCookieName(config);
  const setCookie = res.headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
  if (!setCookie) throw new Error("bench sign-up set no session cookie");
  const token = setCookie.slice(name.length + 1).split(";")[0];
  const slug = decodeURIComponent(res.headers.get("location")!.replace(/^\/w\//, ""));
  const session = (await kv.get<Session>(keys.session(sha256Hex(token)))).value!;
  const userId = session.userId;

  for (const wsName of ["Harbour Research", "Northwind Ops"]) {
    const ws = newWorkspace({
      name: wsName,
      slug: wsName.toLowerCase().replace(/ /g, "-"),
      ownerId: userId,
      personal: false,
    });
    const ok = await addWorkspace(kv.atomic(), ws).commit();
    if (!ok.ok) throw new Error("bench workspace creation failed");
  }
  const workspaceIds: string[] = [];
  for await (const e of kv.list<UserWorkspace>({ prefix: keys.userWorkspaces(userId) })) {
    workspaceIds.push(e.value.workspaceId);
  }

  const accounts = [];
  for (let i = 0; i < logins; i++) {
    const email = `bench.signin${i}@example.com`;
    await signup(appUrl, origin, email, "");
    accounts.push({ email, password: BENCH_PASSWORD });
  }

  const cookie = `${name}=${token}`;
  const page = await fetch(`${appUrl}/w/${encodeURIComponent(slug)}`, { headers: { cookie } });
  const html = await page.text();
  if (page.status !== 200 || !html.includes("Bench Owner")) {
    throw new Error(`the workspace page did not render for the bench user: ${page.status}`);
  }
  const skip = new Set(["date", "content-length", "x-request-id", "set-cookie"]);
  const pageHeaders = [...page.headers].filter(([k]) => !skip.has(k));
  const wsId = (await kv.get<string>(keys.workspaceBySlug(slug))).value!;
  const workspaceName = (await kv.get<Workspace>(keys.workspace(wsId))).value!.name;
  return {
    cookie,
    token,
    userId,
    slug,
    workspaceName,
    workspaceIds,
    logins: accounts,
    pageHeaders,
    pageBytes: new TextEncoder().encode(html).length,
  };
}

function nonce(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/**
 * (b) The floor: the same `WorkspacePage` behind one `kv.getMany` of session, user, slug
 * index, workspace, membership and the user's user_workspaces entries by explicit key
 * (ids known up front, as hints would give them), the same session checks and the same
 * response headers with a fresh CSP nonce; no router, no middleware.
 */
export function startFloor(
  kv: Deno.Kv,
  config: Config,
  assets: Assets,
  fixture: Fixture,
): BenchServer {
  return serve(floorHandler(kv, config, assets, fixture));
}

/** The handler behind {@link startFloor}, for measuring it without a socket. */
export function floorHandler(
  kv: Deno.Kv,
  config: Config,
  assets: Assets,
  fixture: Fixture,
): (req: Request) => Promise<Response> {
  const cookieRe = new RegExp(`(?:^|;\\s*)${sessionCookieName(config)}=([A-Za-z0-9_-]{43})`);
  const tokenHint = new Map([[sha256Hex(fixture.token), fixture.userId]]);
  const userWorkspacesHint = new Map([[fixture.userId, fixture.workspaceIds]]);
  const slugHint = new Map<string, string>();
  const csp = fixture.pageHeaders.find(([k]) => k === "content-security-policy")![1];
  const [cspBefore, cspAfter] = csp.split(/'nonce-[^']*'/);
  const staticHeaders = fixture.pageHeaders.filter(([k]) => k !== "content-security-policy");
  const notFound = () => new Response("not found", { status: 404 });

  return async (req) => {
    const path = new URL(req.url).pathname;
    if (!path.startsWith("/w/")) return notFound();
    const slug = path.slice(3);
    const token = cookieRe.exec(req.headers.get("cookie") ?? "")?.[1];
    if (!token) return new Response(null, { status: 303, headers: { location: "/login" } });
    const tokenHash = sha256Hex(token);
    const userId = tokenHint.get(tokenHash);
    if (!userId) return notFound();
    let wsId = slugHint.get(slug);
    if (!wsId) {
      wsId = (await kv.get<string>(keys.workspaceBySlug(slug))).value ?? undefined;
      if (!wsId) return notFound();
      slugHint.set(slug, wsId);
    }
    const wsIds = userWorkspacesHint.get(userId) ?? [];
    const entries = await kv.getMany<unknown[]>([
      keys.session(tokenHash),
      keys.user(userId),
      keys.workspaceBySlug(slug),
      keys.workspace(wsId),
      keys.membership(wsId, userId),
      ...wsIds.map((id) => keys.userWorkspace(userId, id)),
    ]);
    const session = entries[0].value as Session | null;
    const user = entries[1].value as User | null;
    const workspace = entries[3].value as Workspace | null;
    const membership = entries[4].value as Membership | null;
    if (!session || session.userId !== userId || sessionExpiry(config, session)) {
      return new Response(null, { status: 303, headers: { location: "/login" } });
    }
    if (entries[2].value !== wsId || !user || !workspace || !membership) return notFound();
    const workspaces = entries.slice(5).map((e) => e.value as UserWorkspace | null)
      .filter((w): w is UserWorkspace => w !== null);
    const n = nonce();
    const page = {
      nonce: n,
      stylesheet: assets.stylesheet,
      islandsScript: assets.islandsScript,
      user: { name: user.name, email: user.email, id: user.id },
      // Every signed-in page carries the status banner: the floor renders it too.
      banner: config.statusBanner
        ? { refreshBuffer: config.refreshBuffer, idleWarning: config.idleWarning }
        : null,
      switcher: {
        current: { slug: workspace.slug, name: workspace.name },
        workspaces: workspaces.map((w) => ({ slug: w.slug, name: w.name, role: w.role })),
      },
    };
    const html = "<!doctype html>" +
      renderToString(
        <WorkspacePage page={page} view={{ user, workspace, membership, workspaces }} />,
      );
    const headers = new Headers(staticHeaders);
    headers.set("content-security-policy", `${cspBefore}'nonce-${n}'${cspAfter}`);
    return new Response(html, { headers });
  };
}
