/**
 * Checks for text typed by people: control characters, odd Unicode, lengths.
 *
 * @example
 * ```ts
 * const problem = textProblem(name, { max: 100 });
 * if (problem) return fieldError("name", problem);
 * ```
 * @module
 */

// C0/C1 controls, and invisible or direction-changing format characters that make
// one string display as another (bidi overrides, zero-width joiners, BOM).
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
const INVISIBLE = /[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]/u;
// Everything Unicode says to render as nothing when unsupported: Hangul fillers (U+115F,
// U+3164, U+FFA0), the soft hyphen, the combining grapheme joiner, tag characters (which can
// carry hidden ASCII), variation selectors... A name made of these looks blank, or like another.
const IGNORABLE = /\p{Default_Ignorable_Code_Point}/u;
// Two ignorables are part of ordinary visible text, so they pass where they do their job.
// A variation selector picks a glyph for the character before it (emoji "❤️" is U+2764 U+FE0F;
// Japanese names use ideographic variants): one is allowed right after a visible character.
const VARIATION_SELECTOR =
  /(?<=[\p{L}\p{N}\p{S}\p{Extended_Pictographic}])[\u180b-\u180d\u180f\ufe00-\ufe0f\u{e0100}-\u{e01ef}]/gu;
// A zero-width joiner builds one emoji from several ("👩‍💻" is woman, ZWJ, laptop): allowed
// only between two pictographs (the first may carry a skin tone), never next to letters where
// it would be invisible. Matched once variation selectors are gone ("🏳️‍🌈" has one before it).
const EMOJI_ZWJ =
  /(?<=\p{Extended_Pictographic}\p{Emoji_Modifier}?)\u200d(?=\p{Extended_Pictographic})/gu;
// Marks stack only a few deep in real text (Vietnamese puts two accents on one letter, Tibetan
// stacks of subjoined letters and a vowel reach three or four); "Zalgo" text piles up dozens,
// which spill over the lines above and below.
const MAX_MARKS = 4;
const STACKED_MARKS = new RegExp(`\\p{M}{${MAX_MARKS + 1},}`, "u");
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Options for {@link textProblem}. */
export interface TextRules {
  /** Most characters (code points) allowed. */
  max: number;
  /** Fewest characters; 0 allows empty. */
  min?: number;
  /** Allow line breaks (\n, \r\n) in multi-line fields. */
  multiline?: boolean;
}

/** Returns a human sentence describing what is wrong with `value`, or `null` when it is fine. */
export function textProblem(value: string, rules: TextRules): string | null {
  const length = [...value].length;
  if (length < (rules.min ?? 0)) {
    return rules.min === 1 ? "is required" : `must be at least ${rules.min} characters`;
  }
  if (length > rules.max) return `must be at most ${rules.max} characters`;
  const checked = rules.multiline ? value.replace(/\r?\n/g, "") : value;
  if (CONTROL.test(checked)) return "must not contain control characters";
  // Unicode's own line and paragraph separators break a one-line field just like "\n".
  if (/[\u2028\u2029]/.test(checked)) {
    return rules.multiline ? "must use ordinary line breaks" : "must be on one line";
  }
  const visible = checked.replace(VARIATION_SELECTOR, "").replace(EMOJI_ZWJ, "");
  if (INVISIBLE.test(visible) || IGNORABLE.test(visible)) {
    return "must not contain invisible or direction-changing characters";
  }
  // Counted on the composed form, so "ễ" typed as e + two accents counts as one letter.
  if (STACKED_MARKS.test(checked.normalize("NFC"))) {
    return `must not stack more than ${MAX_MARKS} accents or other marks on one character`;
  }
  if (LONE_SURROGATE.test(value) || !value.isWellFormed()) return "contains invalid characters";
  return null;
}

// deno-lint-ignore no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/gu;

/**
 * Text as it may be shown back in a page (a form re-rendered with what was typed): control
 * characters become U+FFFD, so a NUL or an escape code is visible as "something odd here"
 * instead of reaching the HTML raw.
 */
export function visibleText(value: string): string {
  return value.replace(CONTROLS, "\ufffd").toWellFormed();
}

/** Trims and normalizes (NFC) a display string. */
export function cleanText(value: string): string {
  return value.normalize("NFC").trim();
}

/**
 * A wait as a person reads it, never shorter than the real one: "5 seconds", "1 minute",
 * "15 minutes" (under two minutes in seconds, then whole minutes rounded up).
 *
 * @example
 * ```ts
 * `Try again in ${humanWait(retryAfter)}.`
 * ```
 */
export function humanWait(seconds: number): string {
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  const s = Math.max(1, Math.ceil(seconds));
  return s < 120 ? plural(s, "second") : plural(Math.ceil(s / 60), "minute");
}
