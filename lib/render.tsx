/**
 * Rendering pages: Preact to a string with a doctype, with the request's nonce and assets.
 *
 * @example
 * ```tsx
 * return renderPage(c, (page) => <Layout page={page} title="Hi">…</Layout>, 200);
 * ```
 * @module
 */
import type { VNode } from "preact";
import { renderToString } from "preact-render-to-string";
import type { Ctx } from "./http.ts";
import type { PageContext } from "../components/Layout.tsx";
import { getAuth } from "./auth.ts";
import { listUserWorkspaces } from "../kv/workspaces.ts";

/** Builds the page context; `extra` adds the signed-in header parts. */
export function pageContext(c: Ctx, extra: Partial<PageContext> = {}): PageContext {
  const assets = c.get("assets");
  return {
    nonce: c.get("secureHeadersNonce") ?? "",
    stylesheet: assets.stylesheet,
    islandsScript: assets.islandsScript,
    banner: bannerSettings(c),
    ...extra,
  };
}

/** The status banner's settings from configuration, or null when STATUS_BANNER is off. */
function bannerSettings(c: Ctx): PageContext["banner"] {
  const config = c.get("config");
  if (!config.statusBanner) return null;
  return { refreshBuffer: config.refreshBuffer, idleWarning: config.idleWarning };
}

/** Page context with the signed-in user's header (switcher) when there is a session. */
export async function pageContextWithUser(c: Ctx): Promise<PageContext> {
  const auth = await getAuth(c);
  if (!auth.ok) return pageContext(c);
  const workspaces = await listUserWorkspaces(c.get("kv"), auth.user.id);
  return pageContext(c, {
    user: { name: auth.user.name, email: auth.user.email, id: auth.user.id },
    switcher: {
      current: null,
      workspaces: workspaces.map((w) => ({ slug: w.slug, name: w.name, role: w.role })),
    },
  });
}

/** Renders a page to an HTML response. */
export function renderPage(
  c: Ctx,
  page: VNode,
  status: 200 | 400 | 401 | 403 | 404 | 405 | 409 | 410 | 413 | 415 | 422 | 429 | 500 | 503 = 200,
): Response {
  c.header("Cache-Control", "no-store");
  return c.html("<!doctype html>" + renderToString(page), status);
}
