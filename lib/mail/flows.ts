/**
 * The mail-sending account flows, independent of HTTP: password-reset requests,
 * verification mails (sign-up, resend, email change) and their rate limits.
 *
 * Every mail is enqueued in the same atomic as the token it carries.
 *
 * @example
 * ```ts
 * await requestPasswordReset(kv, config, parsedEmail); // same work whether or not it exists
 * ```
 * @module
 */
import type { Config } from "../config.ts";
import * as keys from "../../kv/keys.ts";
import type { User } from "../../kv/users.ts";
import {
  accountFingerprint,
  addResetToken,
  addVerifyToken,
  newMailToken,
} from "../../kv/email_tokens.ts";
import { countIn } from "../../kv/mail.ts";
import { type Reservation, reserveAttempt } from "../../kv/rate_limits.ts";
import { sha256Hex } from "../crypto.ts";
import { enqueueMail } from "./outgoing.ts";
import { renderMail } from "./templates.ts";

/** Mail rate limits count over a sliding hour. */
export const MAIL_LIMIT_WINDOW = 3600;

/** Counts one request from a client address on the mail-sending forms. */
export function reserveClientMailAttempt(
  kv: Deno.Kv,
  config: Config,
  ip: string,
): Promise<Reservation> {
  return reserveAttempt(
    kv,
    [{ bucket: "mail-ip", subject: ip }],
    config.rateLimitIpPerHour,
    MAIL_LIMIT_WINDOW,
  );
}

/** Counts one mail to an address (by its lookup key; only its hash is stored). */
export function reserveAddressMail(
  kv: Deno.Kv,
  config: Config,
  emailKey: string,
): Promise<Reservation> {
  return reserveAttempt(
    kv,
    [{ bucket: "mail-address", subject: sha256Hex(emailKey) }],
    config.rateLimitEmailPerHour,
    MAIL_LIMIT_WINDOW,
  );
}

/** The link in a reset mail. */
export function resetLink(config: Config, token: string): string {
  return new URL(`/password/reset?token=${token}`, config.appUrl).href;
}

/** The link in a verification mail. */
export function verifyLink(config: Config, token: string): string {
  return new URL(`/verify-email?token=${token}`, config.appUrl).href;
}

/** What {@link requestPasswordReset} did (for tests and counters; never shown to the person). */
export type ResetRequestOutcome = "sent" | "unknown" | "limited";

/**
 * Handles a reset request for a typed address. Known or not, it does the same work: one
 * rate-limit reservation, two KV reads, one token, one rendering, one atomic commit; only
 * a known, matching account under its limit gets the token and the queued mail, which goes
 * to the address stored on the account.
 */
export async function requestPasswordReset(
  kv: Deno.Kv,
  config: Config,
  email: { display: string; key: string },
  now = Date.now(),
): Promise<ResetRequestOutcome> {
  const limit = await reserveAddressMail(kv, config, email.key);
  const id = (await kv.get<string>(keys.userByEmail(email.key))).value;
  const entry = await kv.get<User>(keys.user(id ?? "-"));
  // The account whose key this is, as sign-in finds it ("ÉLODIE@" is "élodie@" there too). The
  // mail goes to the stored address, never the typed one, so a look-alike that shares a key
  // could only send the real owner a link they did not ask for.
  const user = entry.value?.emailKey === email.key ? entry.value : null;
  const issued = newMailToken();
  const content = {
    kind: "password_reset" as const,
    link: resetLink(config, issued.token),
    expiresInSeconds: config.resetTokenTtl,
  };
  const op = kv.atomic();
  let outcome: ResetRequestOutcome;
  if (user && limit.ok) {
    op.check(entry);
    addResetToken(op, user, issued, config.resetTokenTtl, now);
    enqueueMail(op, user.email, content);
    outcome = "sent";
  } else {
    renderMail(content); // the same rendering cost as the path that sends
    outcome = user ? "limited" : "unknown";
  }
  countIn(op, `reset_${outcome}`);
  // A lost race (the account changed this instant) sends nothing, like a limited request.
  if (!(await op.commit()).ok) return "limited";
  return outcome;
}

/**
 * Adds a verification token and its mail to an atomic: "verify" confirms the account's
 * current address; "change" confirms `target` as the new one (see kv/email_tokens.ts).
 */
export function addVerificationMail(
  op: Deno.AtomicOperation,
  config: Config,
  user: Pick<User, "id" | "email" | "emailKey" | "passwordHash">,
  target: { purpose: "verify" | "change"; email: string; emailKey: string },
  now = Date.now(),
): string {
  const issued = newMailToken();
  addVerifyToken(
    op,
    {
      userId: user.id,
      purpose: target.purpose,
      email: target.email,
      emailKey: target.emailKey,
      fromEmailKey: user.emailKey,
      fingerprint: target.purpose === "change" ? accountFingerprint(user) : undefined,
    },
    issued,
    config.verifyTokenTtl,
    now,
  );
  const link = verifyLink(config, issued.token);
  return target.purpose === "verify"
    ? enqueueMail(op, target.email, {
      kind: "verify_email",
      link,
      expiresInSeconds: config.verifyTokenTtl,
    })
    : enqueueMail(op, target.email, {
      kind: "verify_new_email",
      link,
      expiresInSeconds: config.verifyTokenTtl,
      newEmail: target.email,
    });
}

/** The extra writes for sign-up's atomic: a verification token and its mail (createAccount). */
export function signupVerificationMail(
  config: Config,
): (op: Deno.AtomicOperation, user: User) => void {
  return (op, user) => {
    addVerificationMail(op, config, user, {
      purpose: "verify",
      email: user.email,
      emailKey: user.emailKey,
    });
  };
}
