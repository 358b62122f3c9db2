/**
 * The Hono application: shared middleware, then one route module per URL area.
 *
 * @example
 * ```ts
 * const app = createApp({ config, kv, assets });
 * const res = await app.request("/health");
 * ```
 * @module
 */
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import type { AppEnv } from "./lib/http.ts";
import type { Config } from "./lib/config.ts";
import type { Assets } from "./lib/assets.ts";
import { bodySizeLimit, context, csrfProtection, securityHeaders } from "./lib/middleware.ts";
import { forbidden, notFound, onError, tooLarge } from "./routes/errors.tsx";
import { authRoutes } from "./routes/auth.tsx";
import { workspaceRoutes } from "./routes/workspaces.tsx";
import { healthRoutes } from "./routes/health.ts";
import { staticRoutes } from "./routes/static.ts";
import { accountRoutes } from "./routes/account.tsx";
import { exportRoutes } from "./routes/export.ts";

/** What the app is built from. */
export interface AppDeps {
  config: Config;
  kv: Deno.Kv;
  assets: Assets;
}

/** Builds the app. Tests call `createApp(...).request(...)`; main.ts serves it. */
export function createApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(
    requestId(),
    context(deps),
    securityHeaders(deps.config),
    csrfProtection(deps.config.appUrl.origin, forbidden),
    bodySizeLimit(deps.config.bodyLimit, tooLarge),
  );
  app.route("/", staticRoutes());
  app.route("/", healthRoutes());
  app.route("/", authRoutes());
  app.route("/", accountRoutes());
  app.route("/", workspaceRoutes());
  app.route("/", exportRoutes());
  app.notFound(notFound);
  app.onError(onError);
  return app;
}
