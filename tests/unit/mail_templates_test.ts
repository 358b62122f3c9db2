import assert from "node:assert/strict";
import { humanDuration, type MailContent, renderMail } from "../../lib/mail/templates.ts";
import { emailKey } from "../../lib/email.ts";
import { ConfigError, loadConfig } from "../../lib/config.ts";

const LINK = "https://lodge.example/password/reset?token=abc_DEF-123";

Deno.test("every mail names the product, its action, link, expiry and 'ignore' line, in HTML and text", () => {
  const cases: MailContent[] = [
    { kind: "verify_email", link: LINK, expiresInSeconds: 86_400 },
    { kind: "verify_new_email", link: LINK, expiresInSeconds: 86_400, newEmail: "n@x.co" },
    { kind: "password_reset", link: LINK, expiresInSeconds: 3600 },
  ];
  for (const content of cases) {
    const mail = renderMail(content);
    for (const body of [mail.text, mail.html]) {
      assert.match(body, /Lodge/);
      assert.ok(body.includes(LINK), `${content.kind}: link`);
      assert.match(body, /expires in (60 minutes|24 hours)/);
      assert.match(body, /If this wasn(’|'|&#39;)t you, ignore this mail/);
    }
  }
  assert.equal(renderMail(cases[2]).subject, "Reset your Lodge password");
});

Deno.test("mail HTML escapes everything interpolated", () => {
  const evil = `x"><script>alert(1)</script>@evil.co`;
  const mail = renderMail({
    kind: "email_change_notice",
    newEmail: evil,
    accountUrl: `https://lodge.example/account?a="><img src=x>`,
  });
  assert.ok(!mail.html.includes("<script>"));
  assert.ok(!mail.html.includes(`"><img`));
  assert.ok(mail.html.includes("&lt;script&gt;"));
  assert.ok(mail.text.includes(evil), "plain text carries the text as is");
});

Deno.test("humanDuration says lifetimes the way people read them", () => {
  assert.equal(humanDuration(3600), "60 minutes");
  assert.equal(humanDuration(60), "60 seconds");
  assert.equal(humanDuration(86_400), "24 hours");
  assert.equal(humanDuration(7 * 86_400), "7 days");
});

Deno.test("emailKey: case variants share a key (as sign-in finds them); look-alikes after Unicode folding do not", () => {
  assert.equal(emailKey("KATE@Example.COM"), emailKey("kate@example.com"));
  assert.equal(emailKey("\u00c9lodie@example.com"), emailKey("\u00e9lodie@example.com"));
  assert.notEqual(emailKey("m\u0131@example.com"), emailKey("mi@example.com")); // dotless i
  assert.notEqual(emailKey("stra\u00dfe@example.com"), emailKey("strasse@example.com")); // sharp s
  assert.notEqual(emailKey("\u017Fam@example.com"), emailKey("sam@example.com")); // long s
  assert.notEqual(emailKey("\u0130nci@example.com"), emailKey("inci@example.com")); // dotted capital I
});

Deno.test("email configuration: defaults and errors naming the variable", () => {
  const c = loadConfig({});
  assert.equal(c.resendApiKey, undefined);
  assert.equal(c.emailVerificationRequired, false);
  assert.equal(c.resetTokenTtl, 3600);
  assert.equal(c.rateLimitEmailPerHour, 3);
  assert.equal(c.rateLimitIpPerHour, 20);
  assert.throws(
    () => loadConfig({ RESEND_API_KEY: "re_x" }),
    (e: ConfigError) => e.variable === "EMAIL_FROM",
  );
  assert.throws(() => loadConfig({ EMAIL_FROM: "not an address" }), ConfigError);
  assert.throws(
    () => loadConfig({ RESEND_BASE_URL: "ftp://x" }),
    (e: ConfigError) => e.variable === "RESEND_BASE_URL",
  );
  assert.throws(
    () => loadConfig({ RESET_TOKEN_TTL: "10" }),
    (e: ConfigError) => e.variable === "RESET_TOKEN_TTL",
  );
  const r = loadConfig({
    RESEND_API_KEY: "re_x",
    EMAIL_FROM: "Lodge <no-reply@lodge.example>",
    RESEND_BASE_URL: "http://127.0.0.1:9/",
    EMAIL_VERIFICATION_REQUIRED: "true",
  });
  assert.equal(r.resendBaseUrl, "http://127.0.0.1:9");
  assert.equal(r.emailVerificationRequired, true);
});

Deno.test("the password-changed mail says what happened: a reset signs every session out, a change keeps its device", () => {
  const reset = renderMail({ kind: "password_changed", forgotUrl: "http://x/f", byReset: true });
  assert.match(
    reset.text,
    /reset with a link sent to this address, and every session was signed out/,
  );
  assert.doesNotMatch(reset.text, /stays signed in/);
  const change = renderMail({ kind: "password_changed", forgotUrl: "http://x/f" });
  assert.match(change.text, /the device that changed it stays signed in/);
});
