/**
 * Signing in (or up) as another account in a browser that holds a session ends the old
 * session with the reason `switched_account`, so the old account's tabs can say what happened;
 * token answers name their user so a page can refuse a token that is not for it.
 */
import assert from "node:assert/strict";
import { GOOD_PASSWORD, testApp } from "../helpers.ts";

async function mint(t: Awaited<ReturnType<typeof testApp>>, body?: unknown) {
  const res = await t.request("/api/token", {
    method: "POST",
    headers: { origin: t.origin, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function streamSays(t: Awaited<ReturnType<typeof testApp>>, token: string) {
  const res = await t.app.request(`${t.origin}/api/events`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return await res.text();
}

Deno.test("switching account in one browser: the old session ends as switched_account", async () => {
  const t = await testApp();
  try {
    const x = await t.signup();
    const xToken = await mint(t);
    assert.equal(xToken.status, 200);
    const xSlug = xToken.body.workspace.slug;

    // Same browser (same cookie jar) signs up as Y.
    await t.signup();
    const yToken = await mint(t);
    assert.notEqual(yToken.body.userId, xToken.body.userId);
    assert.match(await streamSays(t, xToken.body.token), /"reason":"switched_account"/);
    // A page of X asking for its workspace learns whose session this is now.
    const forbidden = await mint(t, { workspace: xSlug });
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.body.userId, yToken.body.userId);

    // Signing in as X over Y's session: Y's ends as switched_account too.
    const login = await t.post("/login", { email: x.email, password: GOOD_PASSWORD });
    assert.equal(login.status, 303);
    assert.match(await streamSays(t, yToken.body.token), /"reason":"switched_account"/);
    // Signing in again as the same person is an ordinary sign-out of the old session.
    const xAgain = await mint(t);
    await t.post("/login", { email: x.email, password: GOOD_PASSWORD });
    assert.match(await streamSays(t, xAgain.body.token), /"reason":"logout"/);
  } finally {
    t.close();
  }
});
