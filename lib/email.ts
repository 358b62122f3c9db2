/**
 * Email addresses: the typed form is kept for display and mail; the lookup key is
 * trimmed, Unicode-normalized (NFC) and lower-cased. Mail is always sent to the address
 * stored on the account, never to a typed string.
 *
 * @example
 * ```ts
 * const parsed = parseEmail("  Ada@Example.COM ");
 * if (parsed.ok) parsed.key; // "ada@example.com"
 * ```
 * @module
 */
import { textProblem } from "./text.ts";

/** The result of {@link parseEmail}. */
export type ParsedEmail =
  | { ok: true; display: string; key: string }
  | { ok: false; error: string };

// Local part: dot-atom of printable characters (any letter or digit, including non-ASCII,
// and RFC 5322 atext symbols); domain: labels of letters, digits and hyphens.
const LOCAL = /^[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+(\.[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+)*$/u;
const LABEL = /^[\p{L}\p{N}]([\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?$/u;

/**
 * The lookup key for an address: trimmed, NFC, lower-cased, and the domain in its ASCII
 * (punycode) form, so `x@例え.テスト` and `x@xn--r8jz45g.xn--zckzah` are one account.
 */
export function emailKey(address: string): string {
  const a = address.trim().normalize("NFC").toLowerCase();
  const at = a.lastIndexOf("@");
  if (at < 0) return a;
  return `${a.slice(0, at)}@${asciiDomain(a.slice(at + 1)) ?? a.slice(at + 1)}`;
}

function asciiDomain(domain: string): string | null {
  try {
    const host = new URL(`http://${domain}/`).hostname;
    return host === "" ? null : host;
  } catch {
    return null;
  }
}

/** Validates an address typed by a person. */
export function parseEmail(raw: string): ParsedEmail {
  const display = raw.trim().normalize("NFC");
  if (display === "") return { ok: false, error: "Enter your email address." };
  if ([...display].length > 254) {
    return { ok: false, error: "That email address is too long (254 characters at most)." };
  }
  const problem = textProblem(display, { max: 254 });
  if (problem) return { ok: false, error: `The email address ${problem}.` };
  const at = display.lastIndexOf("@");
  const local = display.slice(0, at);
  const domain = display.slice(at + 1);
  const labels = domain.split(".");
  if (
    at < 1 || [...local].length > 64 || !LOCAL.test(local) || labels.length < 2 ||
    !labels.every((l) => LABEL.test(l)) || /^\d+$/.test(labels.at(-1)!)
  ) {
    return { ok: false, error: "Enter an email address like name@example.com." };
  }
  // Full-width and other compatibility characters ("ｅｘａｍｐｌｅ.com") map onto an ordinary
  // domain, so one could hold the account key of a real address that the reset flow, rightly,
  // does not treat as the same mailbox: such a domain is refused, with the reason.
  if (domain.normalize("NFKC") !== domain) {
    return {
      ok: false,
      error:
        "The domain of this email address uses look-alike characters (such as full-width letters). Type it in ordinary characters.",
    };
  }
  const ascii = asciiDomain(domain.toLowerCase());
  if (!ascii || ascii.length > 253) {
    return { ok: false, error: "Enter an email address like name@example.com." };
  }
  return { ok: true, display, key: `${local.toLowerCase()}@${ascii}` };
}
