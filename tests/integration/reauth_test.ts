/**
 * The current-password check of sensitive account changes shares one per-user budget, so a
 * stolen session cannot guess the password through them faster than sign-in allows.
 */
import assert from "node:assert/strict";
import { GOOD_PASSWORD, testApp } from "../helpers.ts";
import { humanWait } from "../../lib/text.ts";

Deno.test("email change: wrong current passwords are limited per user, from any number of addresses", async () => {
  const t = await testApp({
    loginRateLimitMax: 5,
    loginRateLimitWindow: 900,
    rateLimitIpPerHour: 1000,
  });
  try {
    await t.signup("guarded@example.com");
    for (let i = 0; i < 5; i++) {
      const res = await t.post("/account/email", {
        email: `new${i}@example.com`,
        password: `guess-${i}-password`,
      }, { ip: `198.51.100.${i}` });
      assert.equal(res.status, 422, `attempt ${i}`);
      assert.match(await res.text(), /current password is incorrect/);
    }
    const limited = await t.post("/account/email", {
      email: "new9@example.com",
      password: GOOD_PASSWORD,
    }, { ip: "198.51.100.99" });
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get("retry-after")) >= 1);
    const html = await limited.text();
    assert.match(html, /Too many password attempts/);
    assert.match(html, /value="new9@example.com"/, "what was typed is kept");
    assert.match(html, /Sign out/, "the page keeps the signed-in header");
    // The same budget guards the password change.
    const change = await t.post("/account/password", {
      current: GOOD_PASSWORD,
      password: "another-fine-passphrase-12",
    }, { ip: "203.0.113.3" });
    assert.equal(change.status, 429);
    await change.body?.cancel();
  } finally {
    t.close();
  }
});

Deno.test("humanWait never says less than the real wait, and seconds stay seconds", () => {
  assert.equal(humanWait(1), "1 second");
  assert.equal(humanWait(4), "4 seconds");
  assert.equal(humanWait(0.2), "1 second");
  assert.equal(humanWait(119), "119 seconds");
  assert.equal(humanWait(120), "2 minutes");
  assert.equal(humanWait(121), "3 minutes");
  assert.equal(humanWait(900), "15 minutes");
});
