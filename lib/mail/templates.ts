/**
 * Mail templates: every mail Lodge sends, in HTML and plain text. Each names the product,
 * says what the mail is for, carries its link (if any) with the time it expires, and ends
 * with "if this wasn't you, ignore this mail". Everything interpolated into HTML is escaped.
 *
 * @example
 * ```ts
 * const mail = renderMail({ kind: "password_reset", link, expiresInSeconds: 3600 });
 * mail.subject; // "Reset your Lodge password"
 * ```
 * @module
 */

/** The product name shown in every mail. */
export const PRODUCT = "Lodge";

/** What a template needs, by kind. */
export type MailContent =
  | { kind: "verify_email"; link: string; expiresInSeconds: number }
  | { kind: "verify_new_email"; link: string; expiresInSeconds: number; newEmail: string }
  | { kind: "email_change_notice"; newEmail: string; accountUrl: string }
  | { kind: "password_reset"; link: string; expiresInSeconds: number }
  | {
    kind: "password_changed";
    forgotUrl: string;
    /** Changed by a reset link (every session ended) rather than on a signed-in device. */
    byReset?: boolean;
  }
  | { kind: "smoke_test"; sentAt: string };

/** The kinds of mail Lodge sends. */
export type MailKind = MailContent["kind"];

/** A rendered mail (no recipient yet). */
export interface RenderedMail {
  subject: string;
  html: string;
  text: string;
}

/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&#39;");
}

/** "60 minutes", "24 hours", "1 day and 2 hours"… for a lifetime in seconds. */
export function humanDuration(seconds: number): string {
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (seconds < 120) return plural(Math.max(1, Math.round(seconds)), "second");
  const minutes = Math.round(seconds / 60);
  if (minutes <= 120) return plural(minutes, "minute");
  const hours = Math.round(minutes / 60);
  if (hours <= 48) return plural(hours, "hour");
  return plural(Math.round(hours / 24), "day");
}

const IGNORE = "If this wasn't you, ignore this mail: nothing changes unless the link is used.";
const NOT_YOU_CHANGED =
  "If this wasn't you, reset your password now and check your account's sessions.";

interface Parts {
  subject: string;
  heading: string;
  lines: string[];
  action?: { label: string; url: string; expiresInSeconds?: number };
  footer: string;
}

function compose(p: Parts): RenderedMail {
  const text = [
    `${PRODUCT}: ${p.heading}`,
    "",
    ...p.lines,
    ...(p.action
      ? [
        "",
        `${p.action.label}:`,
        p.action.url,
        ...(p.action.expiresInSeconds
          ? [`This link expires in ${humanDuration(p.action.expiresInSeconds)} and works once.`]
          : []),
      ]
      : []),
    "",
    p.footer,
    "",
    `— ${PRODUCT}`,
  ].join("\n");
  const e = escapeHtml;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${e(p.subject)}</title></head>
<body style="font-family:system-ui,sans-serif;line-height:1.5;color:#1b1f24;max-width:36rem;margin:0 auto;padding:1rem">
<p style="font-weight:600;font-size:1.1rem">⛺ ${e(PRODUCT)}</p>
<h1 style="font-size:1.3rem">${e(p.heading)}</h1>
${p.lines.map((l) => `<p>${e(l)}</p>`).join("\n")}
${
    p.action
      ? `<p><a href="${
        e(p.action.url)
      }" style="display:inline-block;padding:.6rem 1rem;background:#2557d6;color:#fff;border-radius:6px;text-decoration:none">${
        e(p.action.label)
      }</a></p>
<p style="font-size:.9rem;color:#555">Or paste this link into your browser: <a href="${
        e(p.action.url)
      }">${e(p.action.url)}</a></p>${
        p.action.expiresInSeconds
          ? `\n<p style="font-size:.9rem;color:#555">This link expires in ${
            e(humanDuration(p.action.expiresInSeconds))
          } and works once.</p>`
          : ""
      }`
      : ""
  }
<p style="font-size:.9rem;color:#555">${e(p.footer)}</p>
</body></html>`;
  return { subject: p.subject, html, text };
}

/** Renders one mail. */
export function renderMail(content: MailContent): RenderedMail {
  switch (content.kind) {
    case "verify_email":
      return compose({
        subject: `Confirm your email address for ${PRODUCT}`,
        heading: "Confirm your email address",
        lines: [`Please confirm that this address belongs to your ${PRODUCT} account.`],
        action: {
          label: "Confirm my email",
          url: content.link,
          expiresInSeconds: content.expiresInSeconds,
        },
        footer: IGNORE,
      });
    case "verify_new_email":
      return compose({
        subject: `Confirm your new email address for ${PRODUCT}`,
        heading: "Confirm your new email address",
        lines: [
          `Someone asked to change the email address of a ${PRODUCT} account to ${content.newEmail}.`,
          "The change happens only when you confirm it.",
        ],
        action: {
          label: "Confirm my new email",
          url: content.link,
          expiresInSeconds: content.expiresInSeconds,
        },
        footer: IGNORE,
      });
    case "email_change_notice":
      return compose({
        subject: `Your ${PRODUCT} email address is about to change`,
        heading: "A change of email address was requested",
        lines: [
          `Someone signed in to your ${PRODUCT} account asked to change its email address to ${content.newEmail}.`,
          "Nothing changes until the new address is confirmed from that mailbox.",
        ],
        action: { label: "Review your account", url: content.accountUrl },
        footer: NOT_YOU_CHANGED,
      });
    case "password_reset":
      return compose({
        subject: `Reset your ${PRODUCT} password`,
        heading: "Reset your password",
        lines: [`Someone asked to reset the password of the ${PRODUCT} account for this address.`],
        action: {
          label: "Choose a new password",
          url: content.link,
          expiresInSeconds: content.expiresInSeconds,
        },
        footer: IGNORE,
      });
    case "password_changed":
      return compose({
        subject: `Your ${PRODUCT} password was changed`,
        heading: "Your password was changed",
        lines: [
          content.byReset
            ? `The password of your ${PRODUCT} account was just reset with a link sent to this address, and every session was signed out.`
            : `The password of your ${PRODUCT} account was just changed, and every other session was signed out (the device that changed it stays signed in).`,
        ],
        action: { label: "Reset your password", url: content.forgotUrl },
        footer: "If this was you, there is nothing to do. " + NOT_YOU_CHANGED,
      });
    case "smoke_test":
      return compose({
        subject: `${PRODUCT} mail smoke test`,
        heading: "Mail delivery works",
        lines: [`This test mail was sent at ${content.sentAt} to check mail delivery.`],
        footer: "If this wasn't you, ignore this mail.",
      });
  }
}
