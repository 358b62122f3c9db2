import assert from "node:assert/strict";
import { testApp } from "../helpers.ts";
import { startMail } from "../mail_helpers.ts";

Deno.test("per-client limit: rotating X-Forwarded-For does not help when no proxy is trusted", async () => {
  const t = await testApp({ rateLimitIpPerHour: 20, rateLimitEmailPerHour: 1000 });
  try {
    for (let i = 0; i < 20; i++) {
      const res = await t.post("/password/forgot", { email: `p${i}@example.com` }, {
        headers: { "x-forwarded-for": `10.0.${i}.1` },
      });
      assert.equal(res.status, 200, `request ${i + 1}`);
    }
    const blocked = await t.post("/password/forgot", { email: "p99@example.com" }, {
      headers: { "x-forwarded-for": "10.9.9.9" },
    });
    assert.equal(blocked.status, 429);
    // Sliding hour: until the twenty fade to nineteen, at most the rest of this hour and a
    // twentieth of the next.
    const retryAfter = Number(blocked.headers.get("retry-after"));
    assert.ok(retryAfter > 0 && retryAfter <= 3600 + 180, `Retry-After ${retryAfter}`);
    assert.match(await blocked.text(), /Too many requests/);
    // Another client (a different connection address) is not affected.
    const other = await t.post("/password/forgot", { email: "p99@example.com" }, {
      ip: "192.0.2.200",
    });
    assert.equal(other.status, 200);
  } finally {
    t.close();
  }
});

Deno.test("behind a trusted proxy, the forwarded client address is what is limited", async () => {
  const t = await testApp({ rateLimitIpPerHour: 2, trustProxy: true });
  try {
    const from = (xff: string) =>
      t.post("/password/forgot", { email: "x@example.com" }, {
        headers: { "x-forwarded-for": xff },
      });
    assert.equal((await from("203.0.113.1")).status, 200);
    assert.equal((await from("203.0.113.1")).status, 200);
    assert.equal((await from("203.0.113.1")).status, 429);
    assert.equal((await from("203.0.113.2")).status, 200);
  } finally {
    t.close();
  }
});

Deno.test("per-address limit: the same generic page, and nothing more is sent", async () => {
  const t = await testApp({ rateLimitEmailPerHour: 3, rateLimitIpPerHour: 1000 });
  const mail = startMail(t);
  try {
    const { email } = await t.signup();
    const pages: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await t.post("/password/forgot", { email }, { ip: `192.0.2.${10 + i}` });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("retry-after"), null);
      pages.push((await res.text()).replace(/nonce="[^"]*"/g, ""));
    }
    assert.ok(pages.every((p) => p === pages[0]), "limited answers look like the others");
    // Three mails an hour per address: the sign-up verification mail and two resets.
    let tokens = 0;
    for await (const _ of t.kv.list({ prefix: ["reset_tokens"] })) tokens++;
    assert.equal(tokens, 2);
    await mail.waitForCount((m) => m.kind === "password_reset", 2);
  } finally {
    await mail.close();
  }
});

Deno.test("forms on no-referrer pages post with Origin: null; only same-origin Sec-Fetch-Site lets them through", async () => {
  const t = await testApp();
  try {
    const post = (headers: Record<string, string>) =>
      t.post("/password/forgot", { email: "x@example.com" }, { headers });
    assert.equal((await post({ origin: "null", "sec-fetch-site": "same-origin" })).status, 200);
    assert.equal((await post({ origin: "null", "sec-fetch-site": "cross-site" })).status, 403);
    assert.equal((await post({ origin: "null", "sec-fetch-site": "same-site" })).status, 403);
    assert.equal((await post({ origin: "null" })).status, 403);
  } finally {
    t.close();
  }
});
