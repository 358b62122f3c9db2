/**
 * Observability: errors and breadcrumbs for Sentry. Every part of Lodge calls these
 * functions; they do nothing until {@link initObservability} turns Sentry on (SENTRY_DSN).
 * Nothing secret or personal may be passed in `data` (no passwords, tokens, cookies,
 * authorization headers or email addresses): identify users by their opaque id.
 *
 * @example
 * ```ts
 * breadcrumb("auth", "sign-in failed", { reason: "bad_password", userId });
 * ```
 * @module
 */

/** Breadcrumb categories used across Lodge. */
export type BreadcrumbCategory = "auth" | "session" | "token" | "email" | "backup" | "job";

/** Records a breadcrumb (no-op while Sentry is off). */
export function breadcrumb(
  _category: BreadcrumbCategory,
  _message: string,
  _data: Record<string, string | number | boolean | null> = {},
  _level: "info" | "warning" | "error" = "info",
): void {}

/** Captures an exception with the request id (no-op while Sentry is off). */
export function captureError(_err: unknown, _context: { requestId?: string } = {}): void {}

/** Captures a warning event carrying the breadcrumbs so far (no-op while Sentry is off). */
export function captureWarning(
  _message: string,
  _data: Record<string, string | number> = {},
): void {}
