/**
 * `GET /static/*` from memory (see lib/assets.ts): hashed build files are immutable for a
 * year; other files revalidate by ETag.
 *
 * @example
 * ```ts
 * app.route("/", staticRoutes());
 * ```
 * @module
 */
import { Hono } from "hono";
import type { AppEnv } from "../lib/http.ts";
import { errorResponse } from "./errors.tsx";

/** Routes: /static/*. */
export function staticRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get("/static/*", (c) => {
    const asset = c.get("assets").files.get(c.req.path);
    if (!asset) return errorResponse(c, 404);
    const headers: Record<string, string> = {
      "Content-Type": asset.type,
      "ETag": asset.etag,
      "Cache-Control": asset.immutable
        ? "public, max-age=31536000, immutable"
        : "public, max-age=300, must-revalidate",
    };
    if (c.req.header("if-none-match") === asset.etag) return c.body(null, 304, headers);
    return c.body(asset.body as Uint8Array<ArrayBuffer>, 200, headers);
  });
  return app;
}
