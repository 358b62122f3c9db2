/**
 * Checking a signed-in person's current password before a sensitive change (new password, new
 * email address). One budget per user for all of them (`LOGIN_RATE_LIMIT_*`, bucket
 * "password-change"): someone holding a stolen session cannot use these forms to guess the
 * password faster than sign-in allows, from however many addresses.
 *
 * @example
 * ```ts
 * const check = await verifyCurrentPassword(c, auth.user, form.fields.get("current"));
 * if (!check.ok) return page(check.status, { current: check.message });
 * ```
 * @module
 */
import type { Ctx } from "./http.ts";
import type { User } from "../kv/users.ts";
import { verifyPassword } from "./password.ts";
import { releaseAttempt, reserveAttempt, settleFailure } from "../kv/rate_limits.ts";
import { breadcrumb } from "./observability.ts";
import { humanWait } from "./text.ts";

/** What {@link verifyCurrentPassword} found. */
export type ReauthResult =
  | { ok: true }
  | {
    ok: false;
    status: 422 | 429;
    message: string;
    reason: "bad_password" | "limited" | "busy";
    /** Seconds until one more attempt is allowed (429 only; also sent as Retry-After). */
    retryAfter?: number;
  };

/** Checks `password` against the user's current one, within the user's attempt budget. */
export async function verifyCurrentPassword(
  c: Ctx,
  user: User,
  password: string,
  action: "password change" | "email change",
): Promise<ReauthResult> {
  const kv = c.get("kv");
  const config = c.get("config");
  const reservation = await reserveAttempt(
    kv,
    [{ bucket: "password-change", subject: user.id }],
    config.loginRateLimitMax,
    config.loginRateLimitWindow,
    { pending: true },
  );
  if (!reservation.ok) {
    c.header("Retry-After", String(reservation.retryAfter));
    breadcrumb("auth", `${action} refused`, { reason: reservation.reason, userId: user.id });
    return reservation.reason === "busy"
      ? {
        ok: false,
        status: 429,
        reason: "busy",
        retryAfter: reservation.retryAfter,
        message: "Other attempts are being checked. Try again in a few seconds.",
      }
      : {
        ok: false,
        status: 429,
        reason: "limited",
        retryAfter: reservation.retryAfter,
        message: `Too many attempts. Try again in ${humanWait(reservation.retryAfter)}.`,
      };
  }
  let valid = false;
  try {
    valid = !!user.passwordHash && password.length <= 4096 &&
      await verifyPassword(user.passwordHash, password);
  } finally {
    if (!valid) await settleFailure(kv, reservation);
  }
  if (!valid) {
    breadcrumb("auth", `${action} refused`, { reason: "bad_password", userId: user.id });
    return {
      ok: false,
      status: 422,
      reason: "bad_password",
      message: "Your current password is incorrect.",
    };
  }
  await releaseAttempt(kv, reservation);
  return { ok: true };
}
