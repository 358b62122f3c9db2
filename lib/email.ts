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
import { domainToUnicode } from "node:url";
import { textProblem } from "./text.ts";

/** The result of {@link parseEmail}. */
export type ParsedEmail =
  | { ok: true; display: string; key: string }
  | { ok: false; error: string };

// Local part: dot-atom of printable characters (any letter or digit, including non-ASCII,
// and RFC 5322 atext symbols); domain: labels of letters, digits and hyphens. Many scripts
// write vowels and viramas as combining marks ("राम" is र, ◌ा, म; "முருகன்" ends in ன, ◌்), so a
// letter or digit may carry marks; a mark never stands first, after a dot, a hyphen or a symbol.
// (How many marks may stack is for textProblem.) Unambiguous, so matching stays linear.
const LETTER = String.raw`[\p{L}\p{N}]\p{M}*`;
const ATOM = String.raw`(?:${LETTER}|[!#$%&'*+/=?^_\x60{|}~-])+`;
const LOCAL = new RegExp(String.raw`^${ATOM}(?:\.${ATOM})*$`, "u");
// A label starts with a letter or digit and ends with one or a mark; hyphens only inside.
const LABEL = new RegExp(String.raw`^${LETTER}(?:-*${LETTER})*$`, "u");
const LABEL_MAX = 63;

// Alphabets with many letters that look alike ("a" "а" "α", "o" "о" "ο", "c" "с"). A mailbox
// name or domain label written in one of them is fine; one mixing them is how "aliсe" (with a
// Cyrillic "с") passes for "alice".
const CONFUSABLE_SCRIPTS = [
  ["Latin", /\p{Script=Latin}/u],
  ["Cyrillic", /\p{Script=Cyrillic}/u],
  ["Greek", /\p{Script=Greek}/u],
] as const;
const SAME_LOOKING = "(Latin “o”, Cyrillic “о” and Greek “ο” look the same)";

/** "Latin and Cyrillic" when `text` has letters of more than one confusable alphabet. */
function mixedScripts(text: string): string | null {
  const found = CONFUSABLE_SCRIPTS.filter(([, script]) => script.test(text)).map(([name]) => name);
  return found.length > 1 ? new Intl.ListFormat("en").format(found) : null;
}

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

/**
 * Validates an address typed by a person: syntax and lengths, no control or invisible
 * characters, and two kinds of look-alike refused: compatibility characters (full-width
 * letters, ligatures: NFKC must not change it) in either part, and a mailbox name or domain
 * label mixing Latin, Cyrillic and Greek letters. One alphabet throughout ("иван@пример.рф",
 * "ξένος@example.gr") is fine, and so, undetected, is a whole-script look-alike: an
 * all-Cyrillic "аррӏе.com" passes, and displays like "apple.com".
 */
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
    !labels.every((l) => LABEL.test(l) && [...l].length <= LABEL_MAX) ||
    /^\d+$/.test(labels.at(-1)!)
  ) {
    return { ok: false, error: "Enter an email address like name@example.com." };
  }
  // The same look-alikes in the mailbox name ("ｕｓｅｒ", "ﬁnance") do not change the key, but
  // the address would display as, and be mistaken for, another person's.
  if (local.normalize("NFKC") !== local) {
    return {
      ok: false,
      error:
        "The part before the @ uses look-alike characters (such as full-width letters). Type it in ordinary characters.",
    };
  }
  const localMix = mixedScripts(local);
  if (localMix) {
    return {
      ok: false,
      error:
        `The part before the @ mixes ${localMix} letters, so it can pass for another address ${SAME_LOOKING}. Type it in one alphabet.`,
    };
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
  // Checked label by label ("пример.com" is fine), on the Unicode form, so a label typed as
  // punycode ("xn--exmple-4nf" is "exаmple" with a Cyrillic "а") is checked too.
  const domainMix = domainToUnicode(ascii).split(".").map(mixedScripts).find(Boolean);
  if (domainMix) {
    return {
      ok: false,
      error:
        `The domain of this email address mixes ${domainMix} letters within one part, so it can pass for another domain ${SAME_LOOKING}. Type each part in one alphabet.`,
    };
  }
  return { ok: true, display, key: `${local.toLowerCase()}@${ascii}` };
}
