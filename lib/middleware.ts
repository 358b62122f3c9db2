/**
 * Shared middleware: request context, security headers with a per-request CSP nonce,
 * body-size limit and CSRF protection by Origin / Sec-Fetch-Site.
 *
 * @example
 * ```ts
 * app.use(context(deps), securityHeaders(config), bodySizeLimit(64 * 1024, tooLarge, unreadable));
 * ```
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { NONCE, secureHeaders } from "hono/secure-headers";
import type { AppEnv, Ctx } from "./http.ts";
import type { Config } from "./config.ts";
import type { Assets } from "./assets.ts";
import { clientIp } from "./http.ts";

/**
 * Gives every request a fresh id (X-Request-Id on the response, in logs and error pages).
 * A client-sent X-Request-Id is not trusted: it would let anyone forge log references.
 */
export function requestId(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const id = crypto.randomUUID();
    c.set("requestId", id);
    c.header("X-Request-Id", id);
    await next();
  };
}

/** Puts configuration, KV, assets and the client address on the context. */
export function context(
  deps: { config: Config; kv: Deno.Kv; assets: Assets },
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    c.set("config", deps.config);
    c.set("kv", deps.kv);
    c.set("assets", deps.assets);
    c.set("clientIp", clientIp(c, deps.config.trustProxy));
    await next();
  };
}

/**
 * Security headers (hono/secure-headers) with a strict CSP: scripts only with this
 * request's nonce, no inline styles, no framing, forms only to this origin.
 */
export function securityHeaders(config: Config): MiddlewareHandler<AppEnv> {
  return secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'self'"],
      scriptSrc: [NONCE, "'strict-dynamic'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", "data:"],
      connectSrc: ["'self'"],
      fontSrc: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
      ...(config.secureCookies ? { upgradeInsecureRequests: [] } : {}),
    },
    xFrameOptions: "DENY",
    referrerPolicy: "same-origin",
    strictTransportSecurity: config.secureCookies ? "max-age=31536000; includeSubDomains" : false,
    permissionsPolicy: { camera: [], microphone: [], geolocation: [], payment: [] },
    // A route may tighten a header for itself (e.g. Referrer-Policy: no-referrer on pages
    // whose URL carried a token); these defaults fill in whatever it did not set.
    overwrite: false,
  });
}

/**
 * Refuses bodies over `maxSize` bytes with 413 (JSON for /api, a page otherwise).
 * A body with a Content-Length (the server holds it to that length) is judged by the
 * header alone, without touching the body, so it is later read on the runtime's fast path.
 * A body without one (chunked) is counted as it streams in and refused once past the limit;
 * one that breaks off (the client went away mid-upload) is answered 400 — the client's
 * doing, not a server error, so it is neither a 500 nor an error report.
 */
export function bodySizeLimit(
  maxSize: number,
  onTooLarge: (c: Ctx) => Response,
  onUnreadable: (c: Ctx) => Response,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const length = c.req.header("content-length");
    if (length !== undefined && c.req.header("transfer-encoding") === undefined) {
      if (parseInt(length, 10) > maxSize) return onTooLarge(c);
      return await next();
    }
    const body = c.req.raw.body;
    // Methods whose bodies mean nothing here, among them TRACE and TRACK, which a Request cannot
    // even be built with: they go on unread (and get their 405 from the router).
    if (!body || BODILESS.has(c.req.method.toUpperCase())) return await next();
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.length;
        if (size > maxSize) {
          reader.cancel().catch(() => {});
          return onTooLarge(c);
        }
        chunks.push(value);
      }
    } catch {
      return onUnreadable(c);
    }
    const whole = new Uint8Array(size);
    let at = 0;
    for (const chunk of chunks) {
      whole.set(chunk, at);
      at += chunk.length;
    }
    // A fresh Request, not `new Request(c.req.raw, …)`: copying the original would copy its abort
    // signal too, which Deno warns about (and a form post never needs it).
    c.req.raw = new Request(c.req.raw.url, {
      method: c.req.raw.method,
      headers: c.req.raw.headers,
      body: whole,
    });
    return await next();
  };
}

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);
const BODILESS = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "TRACK", "CONNECT"]);

/**
 * CSRF protection for every unsafe method. A browser request passes only when
 * `Sec-Fetch-Site` is `same-origin`, or (older browsers) `Origin` is one of the app's origins.
 * A request with neither header passes only when it carries no cookies (a non-browser
 * client authenticating otherwise, which CSRF cannot forge).
 */
export function csrfProtection(
  appOrigins: readonly string[],
  onForbidden: (c: Ctx) => Response,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (SAFE.has(c.req.method)) return await next();
    const site = c.req.header("sec-fetch-site");
    const origin = c.req.header("origin");
    let allowed: boolean;
    if (site !== undefined) {
      // Origin is "null" on pages served with Referrer-Policy: no-referrer (reset and
      // verification pages); Sec-Fetch-Site, which no page can forge, still proves same-origin.
      allowed = site === "same-origin" &&
        (origin === undefined || origin === "null" || appOrigins.includes(origin));
    } else if (origin !== undefined) {
      allowed = appOrigins.includes(origin);
    } else {
      allowed = !c.req.header("cookie");
    }
    if (!allowed) return onForbidden(c);
    await next();
  };
}
