/**
 * Observability: errors and breadcrumbs for Sentry. Every part of Lodge calls these
 * functions; they do nothing until {@link initObservability} turns Sentry on (SENTRY_DSN).
 * Nothing secret or personal may be passed in `data` (no passwords, tokens, cookies,
 * authorization headers or email addresses): identify users by their opaque id. As a second
 * line of defence every event and breadcrumb goes through {@link scrubEvent} /
 * {@link scrubBreadcrumb} before it leaves the process.
 *
 * Breadcrumbs form one process-wide trail (the last 50), not one per request: a warning such
 * as "token refresh refused" then arrives with what led to it (the revocation by another
 * device, earlier refreshes), which is the point. Users appear only as opaque ids.
 *
 * @example
 * ```ts
 * breadcrumb("auth", "sign-in failed", { reason: "bad_password", userId });
 * ```
 * @module
 */
import * as Sentry from "@sentry/deno";

/** Breadcrumb categories used across Lodge. */
export type BreadcrumbCategory = "auth" | "session" | "token" | "email" | "backup" | "job";

let enabled = false;

/** What {@link initObservability} needs. */
export interface ObservabilityOptions {
  sentryDsn: string | undefined;
  appEnv: string;
  version: string;
}

/**
 * Turns Sentry on when a DSN is configured (main.ts calls this once). Integrations that
 * record request headers or bodies are left out: Lodge sends only what it chooses.
 *
 * @example
 * ```ts
 * initObservability({ sentryDsn: config.sentryDsn, appEnv: config.appEnv, version: config.version });
 * ```
 */
export function initObservability(options: ObservabilityOptions): boolean {
  if (!options.sentryDsn || enabled) return enabled;
  Sentry.init({
    dsn: options.sentryDsn,
    environment: options.appEnv,
    release: `lodge@${options.version}`,
    sendDefaultPii: false,
    maxBreadcrumbs: 50,
    defaultIntegrations: false,
    integrations: [
      Sentry.inboundFiltersIntegration(),
      Sentry.functionToStringIntegration(),
      Sentry.linkedErrorsIntegration(),
      Sentry.dedupeIntegration(),
      Sentry.denoContextIntegration(),
      Sentry.globalHandlersIntegration(),
    ],
    beforeSend: (event) => scrubEvent(event),
    beforeBreadcrumb: (crumb) => scrubBreadcrumb(crumb),
  });
  enabled = true;
  return true;
}

/**
 * Whether Sentry is on.
 *
 * @example
 * ```ts
 * if (observabilityEnabled()) console.log("Sentry is on");
 * ```
 */
export function observabilityEnabled(): boolean {
  return enabled;
}

/**
 * Sends what is queued (tests, shutdown).
 *
 * @example
 * ```ts
 * await flushObservability(2000);
 * ```
 */
export async function flushObservability(timeoutMs = 2000): Promise<boolean> {
  return enabled ? await Sentry.flush(timeoutMs) : true;
}

/**
 * Records a breadcrumb (no-op while Sentry is off).
 *
 * @example
 * ```ts
 * breadcrumb("token", "token refreshed", { userId });
 * ```
 */
export function breadcrumb(
  category: BreadcrumbCategory,
  message: string,
  data: Record<string, string | number | boolean | null> = {},
  level: "info" | "warning" | "error" = "info",
): void {
  if (!enabled) return;
  Sentry.addBreadcrumb({ category, message, data, level });
}

/**
 * Captures an exception with the request id (no-op while Sentry is off).
 *
 * @example
 * ```ts
 * captureError(err, { requestId: c.get("requestId") });
 * ```
 */
export function captureError(err: unknown, context: { requestId?: string } = {}): void {
  if (!enabled) return;
  // A capture context, not a shared scope: nothing leaks into the next event.
  Sentry.captureException(err, {
    level: "error",
    tags: context.requestId ? { request_id: context.requestId } : {},
  });
}

/**
 * Captures a warning event carrying the breadcrumbs so far (no-op while Sentry is off).
 *
 * @example
 * ```ts
 * captureWarning("token refresh refused", { reason: "revoked", userId });
 * ```
 */
export function captureWarning(
  message: string,
  data: Record<string, string | number> = {},
): void {
  if (!enabled) return;
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(data)) tags[k] = String(v);
  Sentry.captureMessage(message, {
    level: "warning",
    tags,
    user: typeof data.userId === "string" ? { id: data.userId } : undefined,
  });
}

// ---------------------------------------------------------------------------------------------
// Scrubbing

const FILTERED = "[Filtered]";

/** Keys whose values are never sent, whatever they hold. */
const SECRET_KEY =
  /pass(word|wd)?|secret|token|cookie|authori[sz]ation|e-?mail|jwt|dsn|api[_-]?key|^current$|credential|bearer|session_?hash/i;

const EMAIL = /[^\s@<>()"',;:]+@[^\s@<>()"',;:]+\.[A-Za-z]{2,}/g;
const JWT = /\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;
/** Long base64url / hex runs: session tokens (43 chars) and their SHA-256 (64 hex). */
const LONG_TOKEN = /\b[A-Za-z0-9_-]{40,}\b/g;
const SECRET_QUERY = /([?&](?:access_token|token|code|password|email)=)[^&#\s]*/gi;

/**
 * Removes email addresses, JWTs, bearer credentials and long tokens from a string.
 *
 * @example
 * ```ts
 * scrubString("mail ada@example.com"); // "mail [email]"
 * ```
 */
export function scrubString(s: string): string {
  return s
    .replace(JWT, "[jwt]")
    .replace(BEARER, "$1 [Filtered]")
    .replace(SECRET_QUERY, "$1[Filtered]")
    .replace(EMAIL, "[email]")
    .replace(LONG_TOKEN, "[token]");
}

/**
 * Deep-scrubs any JSON-like value (keys that name secrets lose their values).
 *
 * @example
 * ```ts
 * scrubValue({ password: "x", n: 1 }); // { password: "[Filtered]", n: 1 }
 * ```
 */
export function scrubValue(value: unknown, depth = 0): unknown {
  if (depth > 8) return FILTERED;
  if (typeof value === "string") return scrubString(value);
  if (Array.isArray(value)) return value.map((v) => scrubValue(v, depth + 1));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out[k] = SECRET_KEY.test(k) ? FILTERED : scrubValue(v, depth + 1);
    }
    return out;
  }
  return value;
}

/**
 * Sentry `beforeSend`: strips request secrets, keeps only the user's opaque id, scrubs the rest.
 *
 * @example
 * ```ts
 * Sentry.init({ dsn, beforeSend: (e) => scrubEvent(e) });
 * ```
 */
export function scrubEvent<E extends Sentry.Event>(event: E): E {
  if (event.request) {
    const req = event.request;
    delete req.cookies;
    delete req.data;
    if (req.headers) {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (!/^(cookie|authorization|set-cookie|proxy-authorization|x-forwarded-for)$/i.test(k)) {
          headers[k] = scrubString(String(v));
        }
      }
      req.headers = headers;
    }
    if (typeof req.query_string === "string") req.query_string = scrubString(req.query_string);
    else if (req.query_string) delete req.query_string;
    if (req.url) req.url = scrubString(req.url);
  }
  if (event.user) event.user = event.user.id ? { id: String(event.user.id) } : {};
  if (event.message) event.message = scrubString(event.message);
  if (event.logentry?.message) event.logentry.message = scrubString(event.logentry.message);
  for (const ex of event.exception?.values ?? []) {
    if (ex.value) ex.value = scrubString(ex.value);
    for (const frame of ex.stacktrace?.frames ?? []) delete frame.vars;
  }
  if (event.extra) event.extra = scrubValue(event.extra) as E["extra"];
  if (event.contexts) event.contexts = scrubValue(event.contexts) as E["contexts"];
  if (event.tags) event.tags = scrubValue(event.tags) as E["tags"];
  if (event.breadcrumbs) {
    event.breadcrumbs = event.breadcrumbs.map((b) => scrubBreadcrumb(b) ?? { message: FILTERED });
  }
  return event;
}

/**
 * Sentry `beforeBreadcrumb`: scrubs message and data like {@link scrubEvent}.
 *
 * @example
 * ```ts
 * Sentry.init({ dsn, beforeBreadcrumb: (b) => scrubBreadcrumb(b) });
 * ```
 */
export function scrubBreadcrumb(crumb: Sentry.Breadcrumb): Sentry.Breadcrumb | null {
  const out: Sentry.Breadcrumb = { ...crumb };
  if (out.message) out.message = scrubString(out.message);
  if (out.data) out.data = scrubValue(out.data) as Record<string, unknown>;
  return out;
}
