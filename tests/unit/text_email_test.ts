import assert from "node:assert/strict";
import { emailKey, parseEmail } from "../../lib/email.ts";
import { shortenText, textProblem } from "../../lib/text.ts";
import { safeNext } from "../../lib/http.ts";
import { isCommonPassword, passwordProblem } from "../../lib/password.ts";

Deno.test("email: trimmed, NFC-normalized, lower-cased key; typed form kept", () => {
  const r = parseEmail("  Ada.Lovelace@Example.COM ");
  assert.deepEqual(r, {
    ok: true,
    display: "Ada.Lovelace@Example.COM",
    key: "ada.lovelace@example.com",
  });
  // "é" typed as e + combining acute equals the precomposed form.
  const a = parseEmail("Ren\u0065\u0301@example.fr");
  const b = parseEmail("Ren\u00e9@example.fr");
  assert.ok(a.ok && b.ok && a.key === b.key);
  assert.equal(emailKey(" X@Y.z "), "x@y.z");
  // One mailbox, one key: Unicode and punycode forms of a domain match.
  const idn = parseEmail("x@例え.テスト");
  const puny = parseEmail("x@xn--r8jz45g.xn--zckzah");
  assert.ok(idn.ok && puny.ok);
  assert.equal(idn.key, puny.key);
  assert.equal(idn.display, "x@例え.テスト");
  assert.equal(emailKey("X@例え.テスト"), idn.key);
});

Deno.test("email: malformed, oversized and odd input is refused", () => {
  const bad = [
    "",
    "plain",
    "@example.com",
    "a@",
    "a@b",
    "a b@example.com",
    "a..b@example.com",
    ".a@example.com",
    "a@-example.com",
    "a@example.123",
    "a@exa_mple.com",
    "a\u0000@example.com",
    "a\u202e@example.com",
    "a\u200b@example.com",
    `${"a".repeat(65)}@example.com`,
    `a@${"b".repeat(250)}.com`,
    "a@b@example.com",
  ];
  for (const s of bad) assert.equal(parseEmail(s).ok, false, JSON.stringify(s));
});

Deno.test("text: control characters, invisible characters, lone surrogates, lengths", () => {
  assert.equal(textProblem("Ada", { max: 10 }), null);
  assert.match(textProblem("A\u0007", { max: 10 })!, /control/);
  assert.match(textProblem("Ada\u2028Lovelace", { max: 20 })!, /one line/);
  assert.match(textProblem("Ada\u2029", { max: 20, multiline: true })!, /ordinary line breaks/);
  assert.equal(textProblem("Ada\nLovelace", { max: 20, multiline: true }), null);
  assert.match(textProblem("A\u202eB", { max: 10 })!, /invisible/);
  assert.match(textProblem("A\ud800", { max: 10 })!, /invalid/);
  assert.match(textProblem("x".repeat(11), { max: 10 })!, /at most 10/);
  assert.equal(textProblem("line\nbreak", { max: 20, multiline: true }), null);
});

Deno.test("text: default-ignorable characters and stacked marks are refused", () => {
  const invisible = [
    "\u3164", // HANGUL FILLER: a "blank" name
    "A\u115fB", // HANGUL CHOSEONG FILLER
    "A\uffa0B", // HALFWIDTH HANGUL FILLER
    "A\u034fB", // COMBINING GRAPHEME JOINER
    "A\u00adB", // SOFT HYPHEN
    "Ada\u{e0041}\u{e0042}", // tag characters: hidden ASCII
    "A\u{e0001}B",
    "A\u{e007f}B",
    "Ada\u200dLovelace", // ZWJ between letters
    "\u200d🙂", // ZWJ with nothing before it
    "🙂\u200d", // or nothing after it
    "👩\u200d\u200d💻", // two in a row
    "🙂\ufe0f\ufe0f", // a second variation selector selects nothing
    "\ufe0fA", // a variation selector with no character before it
  ];
  for (const s of invisible) {
    assert.match(textProblem(s, { max: 100 }) ?? "", /invisible/, JSON.stringify(s));
  }
  const zalgo = `Z${"\u0301\u0316\u0324".repeat(7)}algo`; // 21 marks on one letter
  assert.match(textProblem(zalgo, { max: 100 })!, /more than 4 accents/);
  // "q" has no precomposed form with a diaeresis, so every mark stays a mark after NFC.
  assert.match(textProblem(`q${"\u0308".repeat(5)}`, { max: 100 })!, /more than 4 accents/);
  assert.equal(textProblem(`q${"\u0308".repeat(4)}`, { max: 100 }), null);
});

Deno.test("text: real names, scripts and emoji sequences pass", () => {
  const fine = [
    "Zoë Ångström",
    "Nguyễn Thị Minh Khai",
    "Nguyễn Thị Minh Khai".normalize("NFD"), // two marks on one letter when decomposed
    "अनुष्का",
    "محمد",
    "🙂",
    "👩\u200d💻", // woman technologist: pictograph, ZWJ, pictograph
    "👨🏽\u200d💻", // with a skin tone
    "🏳\ufe0f\u200d🌈", // rainbow flag: variation selector before the ZWJ
    "👩\u200d❤\ufe0f\u200d💋\u200d👨", // kiss: three joiners
    "❤\ufe0f", // emoji presentation
    "1\ufe0f\u20e3", // keycap
    "葛\u{e0100}城", // an ideographic variant (Japanese names)
    "Ada Lovelace 🙂",
  ];
  for (const s of fine) assert.equal(textProblem(s, { max: 100 }), null, JSON.stringify(s));
});

Deno.test("safeNext: only same-site relative paths", () => {
  assert.equal(safeNext("/w/acme?tab=1#x"), "/w/acme?tab=1#x");
  for (
    const bad of [
      "//evil.com",
      "/\\evil.com",
      "\\\\evil.com",
      "https://evil.com",
      "javascript:alert(1)",
      "evil.com",
      "/%09/evil.com".replace("%09", "\t"),
      " /x",
      "/x\n",
      "",
      null,
      undefined,
      "/" + "a".repeat(3000),
      "/.//evil.example/x",
      "/..//evil.example",
      "/%2e//evil.example",
      "/%2E%2E//evil.example",
      "/x/../..//evil.example",
      "/a/..//evil.example",
      "/.///evil.example",
      "/./\\evil.example",
    ]
  ) {
    assert.equal(safeNext(bad, "/home"), "/home", JSON.stringify(bad));
  }
});

Deno.test("password rules: length, controls, common passwords", () => {
  assert.match(passwordProblem("short")!, /at least 8/);
  assert.match(passwordProblem("x".repeat(1025))!, /at most 1024/);
  assert.match(passwordProblem("abc\u0000defgh")!, /control/);
  assert.ok(isCommonPassword("password1"));
  assert.ok(isCommonPassword("QWERTYUIOP"));
  assert.match(passwordProblem("iloveyou")!, /commonly used/);
  assert.equal(passwordProblem("violet-harbour-71-kites"), null);
  assert.match(passwordProblem("zzzzzzzzzzzz")!, /too easy/);
  assert.equal(passwordProblem("correct horse battery"), null);
  assert.equal(passwordProblem("xy".repeat(512)), null);
});

Deno.test("password rules: C0 and C1 controls, padded common passwords, only spaces", () => {
  assert.match(passwordProblem("abc\u0085defghij")!, /control characters/); // C1 (NEXT LINE)
  assert.match(passwordProblem("abc\u009bdefghij")!, /control characters/); // C1 (CSI)
  assert.match(passwordProblem("abc\tdefghij")!, /control characters/);
  assert.equal(passwordProblem("abc defghij klm"), null, "spaces are fine");
  assert.ok(isCommonPassword(" password "));
  assert.ok(isCommonPassword("PASSWORD"));
  assert.match(passwordProblem("  iloveyou  ")!, /commonly used/);
  assert.match(passwordProblem("          ")!, /cannot be only spaces/);
  assert.match(passwordProblem("\u00a0\u3000".repeat(5))!, /cannot be only spaces/);
});

Deno.test("password rules: not the account's email address, its local part or the name", () => {
  const context = { email: "Ada.Lovelace@Example.com", name: "Ada Lovelace" };
  for (
    const [password, what] of [
      ["ada.lovelace@example.com", /is your email address/],
      [" ADA.LOVELACE@EXAMPLE.COM ", /is your email address/],
      ["Ada.Lovelace", /is the part of your email address before the @/],
      ["ada lovelace", /is your name/],
      ["  Ada Lovelace\u00a0", /is your name/], // trimmed, like any surrounding space
    ] as const
  ) {
    assert.match(passwordProblem(password, context) ?? "", what, password);
  }
  // The same words are fine for someone else, and longer passwords that contain them pass.
  assert.equal(passwordProblem("ada.lovelace@example.com"), null);
  assert.equal(passwordProblem("Ada Lovelace counts 1843", context), null);
  // A name that is the decomposed form of the password is the same name.
  assert.match(
    passwordProblem("Zoë Ångström", { name: "Zoe\u0308 A\u030angstro\u0308m" })!,
    /is your name/,
  );
});

Deno.test("password hashing: argon2id parameters; NFC-equal passwords verify", async () => {
  const { hashPassword, verifyPassword } = await import("../../lib/password.ts");
  const phc = await hashPassword("Ame\u0301lie-garden-42");
  assert.match(phc, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  assert.ok(await verifyPassword(phc, "Am\u00e9lie-garden-42"));
  assert.equal(await verifyPassword(phc, "Amelie-garden-42"), false);
  assert.equal(await verifyPassword("not a hash", "x"), false);
});

Deno.test("parseEmail refuses domains with compatibility look-alikes (full-width, ligatures)", () => {
  for (const typed of ["dave@ｅｘａｍｐｌｅ.com", "dave@example.ｃｏｍ", "dave@ﬁnance.example"]) {
    const r = parseEmail(typed);
    assert.equal(r.ok, false, typed);
    assert.match(!r.ok ? r.error : "", /look-alike characters/);
  }
  // Ordinary Unicode domains are still fine.
  assert.ok(parseEmail("x@例え.テスト").ok);
  assert.ok(parseEmail("dave@bücher.example").ok);
});

Deno.test("parseEmail refuses look-alike mailbox names and mixed-alphabet domain labels", () => {
  const refused: [string, RegExp][] = [
    ["ali\u0441e.qa@example.com", /before the @ mixes Latin and Cyrillic letters/], // Cyrillic с
    ["\u03b1lice@example.com", /before the @ mixes Latin and Greek letters/], // Greek α
    ["\u0430\u03b2c@example.com", /before the @ mixes Latin, Cyrillic, and Greek letters/],
    ["ｕｓｅｒ@example.com", /before the @ uses look-alike characters/], // full-width
    ["\ufb01nance@example.com", /before the @ uses look-alike characters/], // "ﬁ" ligature
    ["user\u00b2@example.com", /before the @ uses look-alike characters/], // superscript two
    ["a@ex\u0430mple.com", /domain .* mixes Latin and Cyrillic letters within one part/],
    ["a@exampl\u03bf.com", /domain .* mixes Latin and Greek letters/],
    ["a@xn--exmple-4nf.com", /domain .* mixes Latin and Cyrillic letters/], // same, as punycode
  ];
  for (const [typed, message] of refused) {
    const r = parseEmail(typed);
    assert.equal(r.ok, false, typed);
    assert.match(!r.ok ? r.error : "", message, typed);
  }
  // One alphabet per mailbox name and per domain label is fine, whichever it is.
  for (
    const typed of [
      "alice.qa@example.com",
      "иван.петров@example.com",
      "иван42@пример.рф",
      "ivan@пример.рф",
      "ξένος@παράδειγμα.ελ",
      "anna.müller+news@bücher.example",
      "用户@例子.广告",
      "Zoë@example.com",
    ]
  ) {
    assert.ok(parseEmail(typed).ok, typed);
  }
});

Deno.test("parseEmail accepts scripts written with combining marks (vowel signs, viramas)", () => {
  for (
    const typed of [
      "राम1@example.com", // Devanagari: ा is a vowel sign (a mark)
      "முருகன்1@example.com", // Tamil: ு vowel sign, ் virama
      "রহিম1@example.com", // Bengali: ি vowel sign
      "สมศักดิ์1@example.com", // Thai: two marks on ด
      "مُحَمَّد1@example.com", // Arabic with harakat (shadda and fatha on one letter)
      "x@ไทยเน็ต.ไทย",
      "x@डाटामेल.भारत",
    ]
  ) {
    const r = parseEmail(typed);
    assert.ok(r.ok, typed);
    assert.equal(r.display, typed);
  }
  // The key holds the domain in its ASCII (punycode) form, the same as typing it so.
  const idn = parseEmail("x@डाटामेल.भारत");
  assert.ok(idn.ok);
  assert.equal(idn.key, "x@xn--c2bd4bq1db8d.xn--h2brj9c");
  assert.equal(emailKey("X@डाटामेल.भारत"), idn.key);
  const puny = parseEmail("x@xn--c2bd4bq1db8d.xn--h2brj9c");
  assert.ok(puny.ok && puny.key === idn.key);
  const thai = parseEmail("สมศักดิ์1@ไทยเน็ต.ไทย");
  assert.ok(thai.ok);
  assert.equal(thai.key, "สมศักดิ์1@xn--m3cdg9a4kvaz.xn--o3cw4h");
});

Deno.test("parseEmail: a mark needs a letter or digit before it; the old refusals stand", () => {
  const refused: [string, RegExp][] = [
    ["\u0301a@example.com", /start with an accent/], // a mark starting the mailbox name
    ["a.\u0301b@example.com", /like name@example.com/], // ... or an atom after a dot
    ["a+\u0301@example.com", /like name@example.com/], // a mark on a symbol
    ["a@\u093eexample.com", /like name@example.com/], // a label starting with a mark
    ["a@ex-\u093e.com", /like name@example.com/], // a mark right after a hyphen
    ["a@राम-.com", /like name@example.com/], // hyphens stay inside a label
    ["a@-राम.com", /like name@example.com/],
    ["ali\u0441e\u0301@example.com", /before the @ mixes Latin and Cyrillic/],
    ["a@ex\u0430\u0301mple.com", /domain .* mixes Latin and Cyrillic/],
    ["a\u0483@example.com", /before the @ mixes Latin and Cyrillic/], // Cyrillic titlo on "a"
    ["ｒａｍ\u0301@example.com", /look-alike characters/],
    [`q${"\u0308".repeat(5)}@example.com`, /more than 4 accents/],
  ];
  for (const [typed, message] of refused) {
    const r = parseEmail(typed);
    assert.equal(r.ok, false, typed);
    assert.match(!r.ok ? r.error : "", message, typed);
  }
  // 63 characters at most in a label, as before; marks count as characters.
  assert.ok(parseEmail(`a@${"रा".repeat(31)}र.com`).ok);
  assert.equal(parseEmail(`a@${"रा".repeat(32)}.com`).ok, false);
});

const TAGS = (ascii: string) =>
  [...ascii].map((c) => String.fromCodePoint(0xe0000 + c.codePointAt(0)!)).join("");
const CANCEL_TAG = "\u{e007f}";

Deno.test("text: joiners in scripts that use them, keycaps and subdivision flags pass", () => {
  const fine = [
    "زهرا نیک\u200cنام", // Persian: ZWNJ keeps "نیک" and "نام" apart within one word
    "محمد\u200cعلی رضایی",
    "ශ්\u200dරී ලංකා", // Sinhala: ZWJ after the virama makes the rakaransaya
    "क्\u200dष", // Devanagari: half form
    "क्\u200cष", // Devanagari: explicit virama
    "കാര്\u200dത്തിക്", // Malayalam: old-style chillu
    "ಕ್\u200cಷ", // Kannada
    "র\u200d্যাব", // Bengali: ra + ZWJ + hasant + ya (the joiner is followed by a Bengali mark)
    "#\ufe0f\u20e3", // keycap number sign: a variation selector after punctuation
    "*\ufe0f\u20e3",
    `\u{1f3f4}${TAGS("gbeng")}${CANCEL_TAG}`, // England
    `\u{1f3f4}${TAGS("gbsct")}${CANCEL_TAG}`, // Scotland
    `\u{1f3f4}${TAGS("gbwls")}${CANCEL_TAG}`, // Wales
    `Ffion \u{1f3f4}${TAGS("gbwls")}${CANCEL_TAG} Jones`,
  ];
  for (const s of fine) assert.equal(textProblem(s, { max: 100 }), null, JSON.stringify(s));
});

Deno.test("text: joiners where they do nothing, and tags outside a flag, are still refused", () => {
  const invisible = [
    "Ad\u200da", // Latin: the joiner is invisible
    "a\u200cb",
    "Ж\u200dЖ", // Cyrillic
    "α\u200cβ", // Greek
    "e\u0301\u200d\u0301", // a Latin letter's (Inherited) accent does not make it Indic
    "क\u200da", // half Devanagari, half Latin
    "a\u200dक",
    "क\u200d\u0301", // followed by an Inherited accent, not a Devanagari sign
    "क\u200d1", // next to a digit
    "क\u200d ष", // next to a space
    "\u200cक", // nothing before it
    "क\u200d", // at a word's end without a virama before it
    "ک\u200c\u200cن", // two in a row
    "ک\u200b\u200cن", // next to a zero-width space
    "\u{e0067}", // a lone tag character
    `Ada${TAGS("gbeng")}${CANCEL_TAG}`, // tags after a letter
    `🙂${TAGS("gbeng")}${CANCEL_TAG}`, // tags after an emoji other than the black flag
    `\u{1f3f4}${TAGS("gbeng")}`, // no cancel tag
    `\u{1f3f4}${CANCEL_TAG}`, // no tags before it
    `\u{1f3f4}${TAGS("gbeng")}${CANCEL_TAG}${CANCEL_TAG}`,
    `\u{1f3f4}${TAGS("ignore all previous")}${CANCEL_TAG}`, // hidden text dressed as a flag
    `\u{1f3f4}${TAGS("GBENG")}${CANCEL_TAG}`, // subdivision codes are lower case
    "a \ufe0f", // a variation selector after a space
  ];
  for (const s of invisible) {
    assert.match(textProblem(s, { max: 100 }) ?? "", /invisible/, JSON.stringify(s));
  }
  // A joiner is no part of an email address, even between Devanagari letters.
  assert.equal(parseEmail("रा\u200dम@example.com").ok, false);
  assert.equal(parseEmail("x@रा\u200dम.com").ok, false);
});

Deno.test("shortenText: whole graphemes, whole words when it can, an ellipsis at the cut", () => {
  assert.equal(shortenText("Ada Lovelace", 12), "Ada Lovelace");
  assert.equal(shortenText("Ada Lovelace Byron", 16), "Ada Lovelace…"); // "Byron" is not cut
  // ... unless keeping whole words would keep less than half.
  assert.equal(shortenText("Ada Lovelace", 11), "Ada Lovela…");
  assert.equal(shortenText("Augusta Ada King, Countess of Lovelace", 20), "Augusta Ada King…");
  assert.equal(shortenText("Abcdefghijklmnop", 6), "Abcde…"); // one long word is cut inside
  const wales = `\u{1f3f4}${TAGS("gbwls")}${CANCEL_TAG}`; // 7 code points, one grapheme
  assert.equal(shortenText(`Ffion ${wales}${wales}`, 12), "Ffion…");
  assert.equal(shortenText(`${wales}${wales}`, 10), `${wales}…`);
  assert.equal(shortenText("👩\u200d💻".repeat(3), 5), "👩\u200d💻…");
  for (const max of [1, 2, 3, 5, 8, 13]) {
    for (const s of ["a😀".repeat(10), "नमस्ते दुनिया नमस्ते", `x${wales}`.repeat(4)]) {
      const short = shortenText(s, max);
      assert.ok(short.isWellFormed() && [...short].length <= max, `${s} ${max}`);
    }
  }
});

Deno.test("textProblem: joiners at a word's end in joining scripts pass; blank-looking and private-use characters do not", () => {
  for (
    const ok of [
      "\u0d05\u0d28\u0d4d\u200d\u0d35\u0d30\u0d4d\u200d", // Malayalam, old chillu spelling
      "\u0d05\u0d28\u0d4d\u200d \u0d2c\u0d3f",
      "\u0645\u0647\u062f\u06cc\u200c \u0632\u0627\u062f\u0647", // Persian, ZWNJ before a space
    ]
  ) assert.equal(textProblem(ok, { max: 100 }), null, ok);
  assert.match(textProblem("Ada\u200d", { max: 100 })!, /invisible/); // Latin: still refused
  assert.match(textProblem("Ada\u200c Lovelace", { max: 100 })!, /invisible/);
  for (const bad of ["\u2800", "Ada \u2800", "\ufffc", "A\uffff", "\ue000", "\u{f0000}x"]) {
    assert.match(textProblem(bad, { max: 100 })!, /blank-looking|private-use/, JSON.stringify(bad));
  }
  assert.match(textProblem("\u0301", { max: 100 })!, /start with an accent/);
  assert.match(textProblem("\u0301Ada", { max: 100 })!, /start with an accent/);
});
