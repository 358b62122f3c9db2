import assert from "node:assert/strict";
import { GOOD_PASSWORD, testApp } from "../helpers.ts";

Deno.test("sign up lands in the personal workspace and stays signed in", async () => {
  const t = await testApp();
  try {
    const res = await t.post("/signup", {
      email: "  Ada@Example.COM ",
      password: GOOD_PASSWORD,
      name: "Ada Lovelace",
    });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/w/ada-lovelace");
    const cookie = res.headers.get("set-cookie")!;
    assert.match(cookie, /^lodge_session=[A-Za-z0-9_-]{43};/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);
    const page = await t.request("/w/ada-lovelace");
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /Ada Lovelace&#39;s workspace|Ada Lovelace's workspace/);
    assert.match(html, /data-island="WorkspaceSwitcher"/);
  } finally {
    t.close();
  }
});
