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
  if (INVISIBLE.test(checked)) return "must not contain invisible or direction-changing characters";
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
