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
// Some ignorables are part of ordinary visible text, so they pass where they do their job.
// ZERO WIDTH NON-JOINER and JOINER shape letters in scripts that join or build conjuncts:
// Persian "نیک‌نام" keeps two parts of a name apart, Sinhala "ශ්‍රී" (ශ, virama, ZWJ, ර, ී) and
// Devanagari "क्‍ष" choose a conjunct form. Between Latin, Cyrillic or Greek letters (or digits,
// spaces, punctuation: Script=Common) they change nothing visible, so there they stay refused.
// Before the joiner: a letter of such a script, with any marks on it (marks are mostly
// Script=Inherited, so an accent does not make a Latin letter count). After it: a letter or
// a mark of such a script itself (Bengali "র‍্য" is ra, ZWJ, hasant, ya), not an Inherited one.
const LCG = String.raw`\p{Script=Latin}\p{Script=Cyrillic}\p{Script=Greek}`;
const NOT_JOINING = String.raw`[${LCG}\p{Script=Common}\p{Script=Inherited}]`;
const SCRIPT_JOINER = new RegExp(
  String
    .raw`(?<=[\p{L}--${NOT_JOINING}]\p{M}*)[\u200c\u200d](?=[[\p{L}\p{M}]--${NOT_JOINING}])`,
  "gv",
);
// At a word's end a joiner passes in two spellings only: Malayalam's older chillu form ends
// "അന്‍" with a virama and ZWJ, and Persian typists often leave a ZWNJ after a word's last letter.
const WORD_END_JOINER = new RegExp(
  String.raw`(?<=[\p{L}--${NOT_JOINING}]\p{M}+)\u200d(?=\s|$)|(?<=\p{Script=Arabic})\u200c(?=\s|$)`,
  "gv",
);
// The braille blank and the object replacement character draw as nothing; private-use and
// non-characters have no agreed glyph at all.
const BLANK_OR_PRIVATE = /[\u2800\ufffc\p{Co}\p{Noncharacter_Code_Point}]/u;
// A variation selector picks a glyph for the character before it (emoji "❤️" is U+2764 U+FE0F;
// keycaps "#️⃣" put one after "#"; Japanese names use ideographic variants): one is allowed right
// after a visible character.
const VARIATION_SELECTOR =
  /(?<=[\p{L}\p{N}\p{P}\p{S}\p{Extended_Pictographic}])[\u180b-\u180d\u180f\ufe00-\ufe0f\u{e0100}-\u{e01ef}]/gu;
// Tag characters spell a subdivision flag after the black flag: England is U+1F3F4, the tags
// "gbeng", CANCEL TAG. Only that form passes, with a code shaped like a subdivision (two
// letters, then one to four letters or digits), so no more than a few hidden letters fit.
const FLAG_TAGS =
  /(?<=\u{1f3f4})[\u{e0061}-\u{e007a}]{2}[\u{e0030}-\u{e0039}\u{e0061}-\u{e007a}]{1,4}\u{e007f}/gu;
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
  const visible = checked.replace(SCRIPT_JOINER, "").replace(WORD_END_JOINER, "")
    .replace(FLAG_TAGS, "")
    .replace(VARIATION_SELECTOR, "").replace(EMOJI_ZWJ, "");
  if (INVISIBLE.test(visible) || IGNORABLE.test(visible)) {
    return "must not contain invisible or direction-changing characters";
  }
  // Characters that draw nothing or nothing agreed: a name of braille blanks looks empty.
  if (BLANK_OR_PRIVATE.test(checked)) {
    return "must not contain blank-looking, private-use or non-characters";
  }
  if (/^\p{M}/u.test(checked)) return "must not start with an accent or other mark";
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

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });
const words = new Intl.Segmenter(undefined, { granularity: "word" });

/**
 * `value` cut to at most `max` characters (code points) with "…" at the cut, or unchanged
 * when it fits. The cut falls between grapheme clusters, so no letter loses its accents and
 * no emoji ("👩‍💻", a flag) is split; and before a word that would be cut in two, unless that
 * leaves less than half: one very long word is cut inside.
 */
export function shortenText(value: string, max: number): string {
  if ([...value].length <= max) return value;
  // Grapheme boundaries (UTF-16 offsets) that leave room for the "…".
  const ends = [0];
  let count = 0;
  for (const { segment, index } of graphemes.segment(value)) {
    count += [...segment].length;
    if (count > max - 1) break;
    ends.push(index + segment.length);
  }
  let end = ends.at(-1)!;
  const word = words.segment(value).containing(end);
  if (word?.isWordLike && word.index < end) {
    // The last grapheme boundary at or before the start of the word being cut.
    const start = ends.findLast((e) => e <= word.index)!;
    if ([...value.slice(0, start)].length >= (max - 1) / 2) end = start;
  }
  // Not "Ada ,…" or "نیک‌…": no space, punctuation or joiner just before the ellipsis.
  return `${value.slice(0, end).replace(/[\s\p{P}\u200c\u200d]+$/u, "")}…`;
}
