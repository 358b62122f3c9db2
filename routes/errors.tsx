/**
 * Error answers: friendly pages for browsers, JSON problems for /api. Never a stack trace.
 *
 * @example
 * ```ts
 * app.notFound(notFound);
 * app.onError(onError);
 * ```
 * @module
 */
import type { ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { Layout, type PageContext } from "../components/Layout.tsx";
import { type AppEnv, type Ctx, isApi, problem } from "../lib/http.ts";
import { pageContext, pageContextWithUser, renderPage } from "../lib/render.tsx";
import { sessionToken } from "../lib/auth.ts";
import { ConflictError } from "../kv/db.ts";
import { captureError } from "../lib/observability.ts";

type ErrorStatus = 400 | 403 | 404 | 405 | 409 | 413 | 415 | 500 | 503;

const TEXT: Record<ErrorStatus, { title: string; message: string; code: string }> = {
  400: {
    title: "That request didn't work",
    message: "The request could not be read.",
    code: "bad_request",
  },
  403: {
    title: "Request blocked",
    message:
      "This request did not come from a Lodge page, so it was blocked to protect your account. Go back, reload the page and try again.",
    code: "forbidden",
  },
  404: {
    title: "Page not found",
    message: "There is nothing here. The link may be wrong, or you may not have access.",
    code: "not_found",
  },
  405: {
    title: "Not allowed",
    message: "This address does not accept that kind of request.",
    code: "method_not_allowed",
  },
  409: {
    title: "Please try again",
    message: "Something else changed at the same moment. Please try again.",
    code: "conflict",
  },
  413: {
    title: "Too much data",
    message: "What you sent is larger than Lodge accepts.",
    code: "payload_too_large",
  },
  415: {
    title: "Unsupported format",
    message: "Lodge cannot read data sent in that format.",
    code: "unsupported_media_type",
  },
  500: {
    title: "Something went wrong",
    message:
      "An unexpected error happened on our side. Nothing you did caused it; please try again.",
    code: "internal_error",
  },
  503: {
    title: "Temporarily unavailable",
    message: "Lodge cannot reach its data store right now.",
    code: "unavailable",
  },
};

/** An error page or JSON problem with the given status. */
export function errorResponse(c: Ctx, status: ErrorStatus, message?: string): Response {
  const t = TEXT[status];
  if (isApi(c)) return problem(c, status, t.code, message ?? t.message);
  return errorPage(c, pageContext(c), status, message);
}

/**
 * {@link errorResponse} with the signed-in person's header (name, workspace switcher) when
 * the request carries a live session, so a 404 does not look like being signed out. For
 * answers that need no data store (5xx keep the plain one).
 */
export async function errorResponseForUser(
  c: Ctx,
  status: ErrorStatus,
  message?: string,
): Promise<Response> {
  const t = TEXT[status];
  if (isApi(c)) return problem(c, status, t.code, message ?? t.message);
  let page = pageContext(c);
  if (sessionToken(c)) {
    try {
      page = await pageContextWithUser(c);
    } catch {
      // The header is a nicety: the error page itself must not fail.
    }
  }
  return errorPage(c, page, status, message);
}

function errorPage(c: Ctx, page: PageContext, status: ErrorStatus, message?: string): Response {
  const t = TEXT[status];
  return renderPage(
    c,
    <Layout page={page} title={t.title} narrow>
      <section class="card">
        <h1>{t.title}</h1>
        <p>{message ?? t.message}</p>
        <p class="muted">
          <a href="/">Go to the start page</a>
          {status >= 500 && (
            <>
              · Reference: <code>{c.get("requestId")}</code>
            </>
          )}
        </p>
      </section>
    </Layout>,
    status,
  );
}

/** Hono notFound handler. */
export const notFound: NotFoundHandler<AppEnv> = (c) => errorResponseForUser(c, 404);

const METHOD_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/** A route as Hono lists it in `app.routes`. */
interface RouteInfo {
  method: string;
  path: string;
}

/**
 * A notFound handler that knows the app's routes (routes that answer wrong methods themselves,
 * with a message of their own, use `app.all`): a path that exists for other methods gets
 * 405 with `Allow` (not a 404 that says the page is gone), and a GET of a page's path with a
 * trailing slash (`/login/`) is sent to the page with a relative 301. Everything else is the
 * plain 404. Build it after every route is mounted.
 *
 * @example
 * ```ts
 * app.notFound(routeAwareNotFound(app.routes));
 * ```
 */
export function routeAwareNotFound(routes: readonly RouteInfo[]): NotFoundHandler<AppEnv> {
  const table = routes
    .filter((r) => r.method !== "ALL") // middleware, and the per-path 405 answers
    .map((r) => ({
      method: r.method,
      re: new RegExp(
        "^" +
          r.path.split(/(:[A-Za-z_]+|\*)/).map((part) =>
            part === "*"
              ? ".*"
              : part.startsWith(":")
              ? "[^/]+"
              : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")
          ).join("") + "$",
      ),
    }));
  const methodsFor = (path: string) => {
    const methods = new Set(table.filter((r) => r.re.test(path)).map((r) => r.method));
    if (methods.has("GET")) methods.add("HEAD");
    return METHOD_ORDER.filter((m) => methods.has(m));
  };
  return (c) => {
    const path = c.req.path;
    const method = c.req.method.toUpperCase();
    // What "/login/" would allow as "/login" (nothing for a path without a trailing slash).
    const slashless = path.length > 1 && path.endsWith("/")
      ? methodsFor(path.replace(/\/+$/, ""))
      : [];
    if ((method === "GET" || method === "HEAD") && slashless.includes("GET")) {
      // The Location is built from the path as sent, still percent-encoded: the decoded one can
      // hold control characters ("/w/%7f/"), which no header may carry.
      const url = new URL(c.req.url);
      const location = url.pathname.replace(/\/+$/, "");
      // "//host" would be a protocol-relative Location: only single-slash paths are sent on.
      if (location.startsWith("/") && !location.startsWith("//")) {
        return c.redirect(location + url.search, 301);
      }
    }
    // "PUT /login/" is as wrong a method as "PUT /login" (405); "POST /login/" is only a wrong
    // path (404: an Allow listing POST beside a 405 would contradict itself).
    let methods = methodsFor(path);
    if (methods.length === 0 && !slashless.includes(method)) methods = slashless;
    if (methods.length > 0) {
      c.header("Allow", methods.join(", "));
      return errorResponse(c, 405);
    }
    return errorResponseForUser(c, 404);
  };
}

/** Hono error handler: known errors keep their status, the rest are logged and become 500. */
export const onError: ErrorHandler<AppEnv> = (err, c) => {
  if (err instanceof HTTPException) {
    const status = err.status as ErrorStatus;
    if (status in TEXT) return errorResponse(c, status);
  }
  if (err instanceof ConflictError) return errorResponse(c, 409);
  // The path as sent (percent-encoded), so a client cannot write lines of its own into the log.
  console.error(`[${c.get("requestId")}] ${c.req.method} ${new URL(c.req.url).pathname}:`, err);
  captureError(err, { requestId: c.get("requestId") });
  return errorResponse(c, 500);
};

/** 413 for the body-size limit. */
export const tooLarge = (c: Ctx) => errorResponse(c, 413);

/** A request body that broke off before its end (the client went away mid-upload). */
export const unreadableBody = (c: Ctx) =>
  errorResponse(c, 400, "The request was cut off before it arrived. Please try again.");
/** 403 for the CSRF check. */
export const forbidden = (c: Ctx) => errorResponse(c, 403);
