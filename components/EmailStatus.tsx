/**
 * The account page's email card: the address, whether it is verified, a rate-limited
 * "resend the confirmation mail" button, and the way to change the address.
 *
 * @example
 * ```tsx
 * <EmailStatus user={auth.user} notice={c.req.query("email")} />
 * ```
 * @module
 */
import { Alert } from "./Form.tsx";
import { ownEntry } from "../lib/http.ts";

/** Messages shown after the email actions redirect back to /account (`?email=…`). */
export const EMAIL_NOTICES: Record<string, { kind: "success" | "info"; text: string }> = {
  sent: { kind: "success", text: "We sent you a new confirmation link. It may take a minute." },
  verified: { kind: "success", text: "Your email address is confirmed." },
  already: { kind: "info", text: "Your email address is already confirmed." },
  change_sent: {
    kind: "success",
    text:
      "We sent a confirmation link to the new address. Your address changes once you confirm it there.",
  },
  changed: { kind: "success", text: "Your email address was changed." },
};

/** Props of {@link EmailStatus}. */
export interface EmailStatusProps {
  user: { email: string; emailVerifiedAt: number | null };
  notice?: string;
}

/** An address that, when it must wrap (a phone), breaks before the "@" rather than anywhere. */
export function BreakableEmail({ address }: { address: string }) {
  const at = address.lastIndexOf("@");
  if (at <= 0) return <>{address}</>;
  return (
    <>
      {address.slice(0, at)}
      <wbr />
      {address.slice(at)}
    </>
  );
}

/** The email card. */
export function EmailStatus({ user, notice }: EmailStatusProps) {
  const n = ownEntry(EMAIL_NOTICES, notice);
  return (
    <section class="card email-card" aria-labelledby="email-heading">
      <h2 id="email-heading">Email address</h2>
      <div aria-live="polite">{n && <Alert kind={n.kind}>{n.text}</Alert>}</div>
      <p>
        <strong>
          <BreakableEmail address={user.email} />
        </strong>{" "}
        — {user.emailVerifiedAt
          ? <span class="verified">verified</span>
          : <span class="unverified">not verified yet</span>}
      </p>
      {!user.emailVerifiedAt && (
        <form method="post" action="/account/verify-email" class="inline-form">
          <button type="submit" class="button small">Resend the confirmation mail</button>
        </form>
      )}
      <p>
        <a href="/account/email">Change your email address</a>
      </p>
    </section>
  );
}
