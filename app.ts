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
import type { AppEnv } from "./lib/http.ts";
import { allowedOrigins, type Config } from "./lib/config.ts";
import type { Assets } from "./lib/assets.ts";
import {
  bodySizeLimit,
  context,
  csrfProtection,
  requestId,
  securityHeaders,
} from "./lib/middleware.ts";
import {
  forbidden,
  onError,
  routeAwareNotFound,
  tooLarge,
  unreadableBody,
} from "./routes/errors.tsx";
import { authRoutes } from "./routes/auth.tsx";
import { workspaceRoutes } from "./routes/workspaces.tsx";
import { healthRoutes } from "./routes/health.ts";
import { staticRoutes } from "./routes/static.ts";
import { accountRoutes } from "./routes/account.tsx";
import { tokenRoutes } from "./routes/tokens.ts";
import { eventRoutes } from "./routes/events.ts";
import { sessionRoutes } from "./routes/sessions.tsx";
import { devMailRoutes } from "./routes/dev_mail.tsx";
import { passwordRoutes } from "./routes/password.tsx";
import { verifyEmailRoutes } from "./routes/verify_email.tsx";
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
    csrfProtection(allowedOrigins(deps.config), forbidden),
    bodySizeLimit(deps.config.bodyLimit, tooLarge, unreadableBody),
  );
  app.route("/", staticRoutes());
  app.route("/", healthRoutes());
  app.route("/", authRoutes());
  app.route("/", accountRoutes());
  app.route("/", workspaceRoutes());
  app.route("/", tokenRoutes());
  app.route("/", eventRoutes());
  app.route("/", sessionRoutes());
  app.route("/", devMailRoutes());
  app.route("/", passwordRoutes());
  app.route("/", verifyEmailRoutes());
  app.route("/", exportRoutes());
  app.notFound(routeAwareNotFound(app.routes));
  app.onError(onError);
  return app;
}
