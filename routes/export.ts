/**
 * `GET /w/:slug/export`: owners and admins download their workspace as one JSON file
 * (kv/export.ts). Members get 403; anyone who is not a member gets the same 404 as for
 * a workspace that does not exist. Each export is recorded in the audit log.
 *
 * @example
 * ```ts
 * app.route("/", exportRoutes());
 * ```
 * @module
 */
import { Hono } from "hono";
import type { AppEnv } from "../lib/http.ts";
import { getAuth, signInRequired } from "../lib/auth.ts";
import { getWorkspaceForMember } from "../kv/workspaces.ts";
import { buildWorkspaceExport } from "../kv/export.ts";
import { addAuditEvent } from "../kv/audit.ts";
import { errorResponseForUser } from "./errors.tsx";
import { breadcrumb } from "../lib/observability.ts";

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

/**
 * Routes: /w/:slug/export.
 *
 * @example
 * ```ts
 * app.route("/", exportRoutes());
 * ```
 */
export function exportRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/w/:slug/export", async (c) => {
    const auth = await getAuth(c);
    if (!auth.ok) return signInRequired(c, auth.reason);
    const slug = c.req.param("slug");
    const kv = c.get("kv");
    const member = SLUG.test(slug) ? await getWorkspaceForMember(kv, slug, auth.user.id) : null;
    if (!member) return await errorResponseForUser(c, 404);
    if (member.membership.role !== "owner" && member.membership.role !== "admin") {
      return await errorResponseForUser(
        c,
        403,
        "Only owners and admins can export this workspace.",
      );
    }
    const now = Date.now();
    const day = new Date(now).toISOString().slice(0, 10);
    const headers = {
      "content-type": "application/json; charset=utf-8",
      "content-disposition": `attachment; filename="lodge-${member.workspace.slug}-${day}.json"`,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    };
    // HEAD asks about the download without taking it: no export is built or recorded.
    if (c.req.raw.method === "HEAD") return new Response(null, { headers });
    const doc = await buildWorkspaceExport(kv, member.workspace, now);
    const op = kv.atomic();
    addAuditEvent(op, {
      workspaceId: member.workspace.id,
      type: "workspace.exported",
      actorId: auth.user.id,
    }, now);
    await op.commit();
    breadcrumb("backup", "workspace exported", { workspaceId: member.workspace.id });
    return new Response(JSON.stringify(doc, null, 2), { headers });
  });
  return app;
}
