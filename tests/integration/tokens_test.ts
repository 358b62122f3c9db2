import assert from "node:assert/strict";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { CookieJar, GOOD_PASSWORD, type TestApp, testApp } from "../helpers.ts";
import {
  currentSigningKey,
  mintAccessToken,
  pruneSigningKeys,
  rotateSigningKeyIfDue,
} from "../../lib/tokens.ts";
import { rotateSigningKeys } from "../../cron/rotate_signing_keys.ts";
import { addUserEvent } from "../../kv/events.ts";
import * as keys from "../../kv/keys.ts";
import { sha256Hex } from "../../lib/crypto.ts";

/** POST /api/token with the jar's cookie, or (another device) with `cookie` and no jar update. */
async function token(t: TestApp, cookie?: string) {
  const init = { method: "POST", headers: { origin: t.origin, ...(cookie ? { cookie } : {}) } };
  const res = cookie
    ? await t.app.request(`${t.origin}/api/token`, init)
    : await t.request("/api/token", init);
  return { status: res.status, body: await res.json() };
}

/** Signs in as `email` with a separate cookie jar (a second device). */
async function secondDevice(t: TestApp, email: string): Promise<CookieJar> {
  const jar = new CookieJar();
  const res = await t.app.request(`${t.origin}/login`, {
    method: "POST",
    headers: { origin: t.origin, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ email, password: GOOD_PASSWORD }),
  }, { remoteAddr: { hostname: "198.51.100.7" } });
  assert.equal(res.status, 303);
  jar.update(res);
  return jar;
}

/** Reads SSE frames from a response body until `stop` says so or the stream ends. */
async function readEvents(
  res: Response,
  stop: (event: string, data: Record<string, unknown>) => boolean,
): Promise<
  { events: { event: string; id?: string; data: Record<string, unknown> }[]; ended: boolean }
> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: { event: string; id?: string; data: Record<string, unknown> }[] = [];
  let buf = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) return { events, ended: true };
    buf += value;
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const fields = Object.fromEntries(
        block.split("\n").map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)]),
      );
      if (!fields.event) continue;
      const e = { event: fields.event, id: fields.id, data: JSON.parse(fields.data) };
      events.push(e);
      if (stop(e.event, e.data)) {
        await reader.cancel();
        return { events, ended: false };
      }
    }
  }
}

Deno.test("token: claims, kid, lifetime, and the JWKS verifies it", async () => {
  const t = await testApp({ accessTokenTtl: 600 });
  try {
    await t.signup();
    const { status, body } = await token(t);
    assert.equal(status, 200);
    assert.ok(Date.parse(body.expiresAt) > Date.now() + 590_000);
    assert.equal(body.workspace.role, "owner");
    const header = decodeProtectedHeader(body.token);
    assert.equal(header.alg, "ES256");
    assert.equal(typeof header.kid, "string");
    const jwks = await (await t.request("/.well-known/jwks.json")).json();
    assert.ok(jwks.keys.some((k: { kid: string }) => k.kid === header.kid));
    for (const k of jwks.keys) assert.equal(k.d, undefined, "never publish private parts");
    const { payload } = await jwtVerify(body.token, createLocalJWKSet(jwks), {
      issuer: t.origin,
      audience: t.origin,
    });
    assert.equal(typeof payload.sub, "string");
    assert.equal(typeof payload.sid, "string");
    assert.equal(payload.ws, body.workspace.id);
    assert.equal(payload.role, "owner");
    assert.equal(payload.exp! - payload.iat!, 600);
  } finally {
    t.close();
  }
});

Deno.test("token: no cookie, a signed-out session and a revoked one cannot mint (401 + reason)", async () => {
  const t = await testApp();
  try {
    assert.deepEqual((await token(t)).body.reason, "missing");
    const { email } = await t.signup();
    const first = t.jar.header();
    await t.post("/logout", {});
    const afterLogout = await token(t, first);
    assert.equal(afterLogout.status, 401);
    assert.equal(afterLogout.body.reason, "logout");

    const laptop = await secondDevice(t, email);
    const phone = await secondDevice(t, email);
    const revoke = await t.request("/account/sessions/revoke-others", {
      method: "POST",
      headers: { origin: t.origin, cookie: laptop.header() },
    });
    assert.equal(revoke.status, 303);
    const refused = await token(t, phone.header());
    assert.equal(refused.status, 401);
    assert.equal(refused.body.reason, "signed_out_everywhere");
    assert.equal((await token(t, laptop.header())).status, 200);
    assert.equal((await token(t, "lodge_session=" + "x".repeat(43))).body.reason, "unknown");
  } finally {
    t.close();
  }
});

Deno.test("token: an expired session cannot mint, with reason expired / idle_timeout", async () => {
  const idle = await testApp({
    sessionIdleTimeout: 1,
    sessionAbsoluteLifetime: 100,
    sessionTouchInterval: 1,
  });
  const absolute = await testApp({
    sessionIdleTimeout: 1,
    sessionAbsoluteLifetime: 1,
    sessionTouchInterval: 1,
  });
  try {
    await Promise.all([idle.signup(), absolute.signup()]);
    await new Promise((r) => setTimeout(r, 1100));
    const [a, b] = await Promise.all([token(idle), token(absolute)]);
    assert.equal(a.status, 401);
    assert.equal(a.body.reason, "idle_timeout");
    assert.equal(b.status, 401);
    assert.equal(b.body.reason, "expired");
  } finally {
    idle.close();
    absolute.close();
  }
});

Deno.test("events: an expired or forged token is refused outright", async () => {
  const t = await testApp({ accessTokenTtl: 60 });
  try {
    await t.signup();
    const { body } = await token(t);
    const claims = JSON.parse(atob(body.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    const key = await currentSigningKey(t.kv, t.config);
    const old = await mintAccessToken(t.config, key, claims, Date.now() - 61_000);
    const expired = await t.app.request(`${t.origin}/api/events`, {
      headers: { authorization: `Bearer ${old.token}` },
    });
    assert.equal(expired.status, 401);
    assert.equal((await expired.json()).reason, "token_expired");

    const [h, p, s] = body.token.split(".");
    const forged = `${h}.${p.slice(0, -2)}AA.${s}`;
    const bad = await t.app.request(`${t.origin}/api/events?access_token=${forged}`);
    assert.equal(bad.status, 401);
    assert.equal((await bad.json()).reason, "invalid_token");
    assert.equal((await t.app.request(`${t.origin}/api/events`)).status, 401);
  } finally {
    t.close();
  }
});

Deno.test("events: the stream says why and closes within a second of revocation", async () => {
  const t = await testApp({ eventsHeartbeat: 1 });
  try {
    const { email } = await t.signup();
    const { body } = await token(t);
    const res = await t.app.request(`${t.origin}/api/events`, {
      headers: { authorization: `Bearer ${body.token}` },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /text\/event-stream/);
    const other = await secondDevice(t, email);
    let revokedAt = 0;
    const reading = readEvents(res, (event) => event === "heartbeat" && revokedAt === 0);
    const first = await reading;
    assert.equal(first.events[0].event, "ready");
    assert.ok(first.events.some((e) => e.event === "heartbeat"));

    const res2 = await t.app.request(`${t.origin}/api/events`, {
      headers: { authorization: `Bearer ${body.token}` },
    });
    const reading2 = readEvents(res2, () => false);
    await new Promise((r) => setTimeout(r, 50));
    revokedAt = performance.now();
    const page = await t.request("/account/sessions", { headers: { cookie: other.header() } });
    const html = await page.text();
    const mine = /data-session-id="([0-9a-z]{26})"/g;
    const ids = [...html.matchAll(mine)].map((m) => m[1]);
    assert.equal(ids.length, 2);
    assert.match(html, /This device/);
    // Sign out "the other device" (the one holding the stream) from the second one.
    const target = ids[1];
    const revoke = await t.request(`/account/sessions/${target}/revoke`, {
      method: "POST",
      headers: { origin: t.origin, cookie: other.header() },
    });
    assert.equal(revoke.status, 303);
    const done = await reading2;
    const elapsed = performance.now() - revokedAt;
    assert.ok(done.ended, "the server closed the stream");
    const last = done.events.at(-1)!;
    assert.equal(last.event, "session.revoked");
    assert.equal(last.data.reason, "revoked");
    assert.ok(elapsed < 1000, `closed after ${elapsed} ms`);

    // The still-valid token cannot open a new stream for the dead session.
    const again = await t.app.request(`${t.origin}/api/events`, {
      headers: { authorization: `Bearer ${body.token}` },
    });
    const replay = await readEvents(again, () => false);
    assert.deepEqual(replay.events.map((e) => [e.event, e.data.reason]), [
      ["session.revoked", "revoked"],
    ]);
  } finally {
    t.close();
  }
});

Deno.test("events: Last-Event-ID replays what was missed", async () => {
  const t = await testApp();
  try {
    await t.signup();
    const { body } = await token(t);
    const sub = JSON.parse(atob(body.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")))
      .sub;
    const op = t.kv.atomic();
    const first = addUserEvent(op, sub, "workspace.renamed", { name: "One" }, Date.now() - 5000);
    const second = addUserEvent(op, sub, "workspace.renamed", { name: "Two" }, Date.now() - 4000);
    await op.commit();
    const res = await t.app.request(`${t.origin}/api/events`, {
      headers: { authorization: `Bearer ${body.token}`, "last-event-id": first.id },
    });
    const got = await readEvents(res, (e) => e === "workspace.renamed");
    const replayed = got.events.filter((e) => e.event === "workspace.renamed");
    assert.equal(replayed.length, 1);
    assert.equal(replayed[0].id, second.id);
    assert.equal(replayed[0].data.name, "Two");
  } finally {
    t.close();
  }
});

Deno.test("signing keys: one winner when instances race; rotation keeps old tokens verifiable", async () => {
  const t = await testApp({ signingKeyRotation: 3600, accessTokenTtl: 900 });
  try {
    const racing = await Promise.all(
      Array.from({ length: 5 }, () => rotateSigningKeyIfDue(t.kv, t.config)),
    );
    assert.equal(new Set(racing.map((r) => r.current.kid)).size, 1);
    assert.equal(racing.filter((r) => r.rotated).length, 1);

    await t.signup();
    const before = (await token(t)).body.token;
    const oldKid = decodeProtectedHeader(before).kid;

    // The cron: one of two instances runs it; an hour before the key's end it rotates.
    const now = Date.now() + 3600_000 - 30 * 60_000;
    const runs = await Promise.all([
      rotateSigningKeys(t.kv, t.config, now, "instance-a"),
      rotateSigningKeys(t.kv, t.config, now, "instance-b"),
    ]);
    assert.equal(runs.filter((r) => r.ran).length, 1);
    assert.ok(runs.some((r) => r.rotated));

    const after = (await token(t)).body.token;
    assert.notEqual(decodeProtectedHeader(after).kid, oldKid);
    const jwks = await (await t.request("/.well-known/jwks.json")).json();
    assert.equal(jwks.keys.length, 2);
    const set = createLocalJWKSet(jwks);
    await jwtVerify(before, set);
    await jwtVerify(after, set);

    // Once every token of the old key has expired, it leaves the JWKS.
    assert.equal(await pruneSigningKeys(t.kv, now + 2 * 900_000), 1);
    const later = await (await t.request("/.well-known/jwks.json")).json();
    assert.deepEqual(later.keys.map((k: { kid: string }) => k.kid), [
      decodeProtectedHeader(after).kid,
    ]);
    assert.ok((await t.kv.get(keys.signingKeyCurrent())).value);
  } finally {
    t.close();
  }
});

Deno.test("sessions page and password change: wrong current → 422, rate limited, others signed out", async () => {
  const t = await testApp({ loginRateLimitMax: 3 });
  try {
    const { email } = await t.signup();
    const phone = await secondDevice(t, email);
    const page = await t.request("/account/sessions");
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /198\.51\.100\.7/);
    assert.match(html, /This device/);
    assert.match(html, /Sign out all other devices/);

    const weak = await t.post("/account/password", { current: GOOD_PASSWORD, password: "short" });
    assert.equal(weak.status, 422);
    const wrong = await t.post("/account/password", {
      current: "not-my-password-at-all",
      password: "a-brand-new-passphrase-42",
    });
    assert.equal(wrong.status, 422);
    assert.match(await wrong.text(), /current password is incorrect/);

    const ok = await t.post("/account/password", {
      current: GOOD_PASSWORD,
      password: "a-brand-new-passphrase-42",
    });
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get("location"), "/account/sessions?m=password_changed");
    assert.equal((await token(t)).status, 200, "this device stays signed in");
    const refused = await token(t, phone.header());
    assert.equal(refused.status, 401);
    assert.equal(refused.body.reason, "password_changed");

    const oldLogin = await t.app.request(`${t.origin}/login`, {
      method: "POST",
      headers: { origin: t.origin, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ email, password: GOOD_PASSWORD }),
    });
    assert.equal(oldLogin.status, 401);

    for (let i = 0; i < 3; i++) {
      await t.post("/account/password", { current: "wrong-guess-" + i, password: "x-y-z-1234567" });
    }
    const limited = await t.post("/account/password", {
      current: "wrong-again",
      password: "x-y-z-1234567",
    });
    assert.equal(limited.status, 429);
    assert.ok(limited.headers.get("retry-after"));
  } finally {
    t.close();
  }
});

Deno.test("events: a stream ends at its session's own deadline with the real reason, not 'revoked'", async () => {
  const idle = await testApp({
    sessionIdleTimeout: 2,
    sessionAbsoluteLifetime: 100,
    eventsHeartbeat: 30,
    accessTokenTtl: 60,
  });
  const absolute = await testApp({
    sessionIdleTimeout: 100,
    sessionAbsoluteLifetime: 2,
    eventsHeartbeat: 30,
    accessTokenTtl: 60,
  });
  try {
    const results = await Promise.all([idle, absolute].map(async (t) => {
      await t.signup();
      const { body } = await token(t);
      const started = performance.now();
      const res = await t.app.request(`${t.origin}/api/events`, {
        headers: { authorization: `Bearer ${body.token}` },
      });
      assert.equal(res.status, 200);
      const done = await readEvents(res, () => false);
      return { done, elapsed: performance.now() - started, t };
    }));
    for (
      const [{ done, elapsed, t }, reason] of results.map((r, i) =>
        [r, i ? "expired" : "idle_timeout"] as const
      )
    ) {
      assert.ok(done.ended);
      const last = done.events.at(-1)!;
      assert.deepEqual([last.event, last.data.reason], ["session.revoked", reason]);
      // At the deadline (2 s), long before the 30-s heartbeat.
      assert.ok(elapsed < 4000, `ended after ${elapsed} ms`);
      // The page's next refresh hears the same reason.
      const again = await token(t);
      assert.equal(again.status, 401);
      assert.equal(again.body.reason, reason);
    }
  } finally {
    idle.close();
    absolute.close();
  }
});

Deno.test("sessions: KV keeps an entry past its deadline so its reason is recorded, never accepts it", async () => {
  const t = await testApp({ sessionIdleTimeout: 1, sessionAbsoluteLifetime: 100 });
  try {
    await t.signup();
    const tokenHash = sha256Hex(t.jar.cookies.get("lodge_session")!);
    await new Promise((r) => setTimeout(r, 1300));
    // Nobody has noticed yet: the entry is still there (for its reason), and still refused.
    assert.ok((await t.kv.get(keys.session(tokenHash))).value);
    const page = await t.request("/account/sessions");
    assert.equal(page.status, 303);
    assert.match(page.headers.get("location")!, /^\/login/);
    // Refused once, ended with its reason: the entry is gone and the record says why.
    assert.equal((await t.kv.get(keys.session(tokenHash))).value, null);
    const record = await t.kv.get<{ reason: string }>(keys.sessionRevocation(tokenHash));
    assert.equal(record.value?.reason, "idle_timeout");
  } finally {
    t.close();
  }
});

Deno.test("password change: 'same as current' only once the current one is right; two devices at once", async () => {
  const t = await testApp();
  try {
    const { email } = await t.signup();
    // A wrong current password typed again as the new one: the answer is about the wrong one.
    let res = await t.post("/account/password", {
      current: "not-my-password-1",
      password: "not-my-password-1",
    });
    assert.equal(res.status, 422);
    let html = await res.text();
    assert.match(html, /current password is incorrect/);
    assert.doesNotMatch(html, /different from your current/);
    // The right one, unchanged: now it is about the new password.
    res = await t.post("/account/password", { current: GOOD_PASSWORD, password: GOOD_PASSWORD });
    assert.equal(res.status, 422);
    html = await res.text();
    assert.match(html, /different from your current/);

    // Two devices change it at the same moment: one wins; the other is signed out and told
    // why on the sign-in page, never "reload and try again" on a form it can no longer use.
    const phone = await secondDevice(t, email);
    const change = (cookie: string, password: string) =>
      t.app.request(`${t.origin}/account/password`, {
        method: "POST",
        headers: {
          origin: t.origin,
          cookie,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({ current: GOOD_PASSWORD, password }),
      });
    const [a, b] = await Promise.all([
      change(t.jar.header(), "laptop-passphrase-77"),
      change(phone.header(), "phone-passphrase-88"),
    ]);
    const answers = [a, b].map((r) => [r.status, r.headers.get("location")]);
    const won = answers.filter(([, l]) => l === "/account/sessions?m=password_changed");
    assert.equal(won.length, 1, JSON.stringify(answers));
    const lost = answers.find(([, l]) => l !== "/account/sessions?m=password_changed")!;
    assert.equal(lost[0], 303, JSON.stringify(answers));
    assert.match(String(lost[1]), /^\/login\?/);
  } finally {
    t.close();
  }
});

Deno.test("sessions page names each device in its button; token options are typed strictly", async () => {
  const t = await testApp();
  try {
    const { email } = await t.signup();
    await secondDevice(t, email);
    const html = await (await t.request("/account/sessions")).text();
    assert.match(
      html,
      /Sign out this device<span class="visually-hidden">: [^<]+, 198\.51\.100\.7, last seen [^<]+<\/span>/,
    );
    const res = await t.request("/api/token", {
      method: "POST",
      headers: { origin: t.origin, "content-type": "application/json" },
      body: JSON.stringify({ stayActive: "yes" }),
    });
    assert.equal(res.status, 400);
  } finally {
    t.close();
  }
});

Deno.test("revoking never overwrites how an already-expired session ended", async () => {
  const t = await testApp({ sessionIdleTimeout: 2, sessionTouchInterval: 1 });
  try {
    const { email } = await t.signup();
    const [idleDevice, activeDevice, stale] = [
      await secondDevice(t, email),
      await secondDevice(t, email),
      await secondDevice(t, email),
    ];
    const hashOf = (jar: CookieJar) => sha256Hex(jar.cookies.get("lodge_session")!);
    const reasonOf = async (jar: CookieJar) =>
      (await t.kv.get<{ reason: string }>(keys.sessionRevocation(hashOf(jar)))).value?.reason;
    await new Promise((r) => setTimeout(r, 1200));
    // This device and one other stay active; two others go idle past the 2-s timeout.
    await t.request("/account/sessions");
    await t.app.request(`${t.origin}/account`, { headers: { cookie: activeDevice.header() } });
    await new Promise((r) => setTimeout(r, 1100));
    // Signing out a session from a stale page: it had already ended, so it says so.
    const ids = [...(await (await t.request("/account/sessions")).text())
      .matchAll(/data-session-id="([0-9a-z]{26})"/g)].map((m) => m[1]);
    assert.equal(ids.length, 2, "expired sessions are not listed");
    const staleId = (await t.kv.get<{ id: string }>(keys.session(hashOf(stale)))).value!.id;
    const res = await t.request(`/account/sessions/${staleId}/revoke`, {
      method: "POST",
      headers: { origin: t.origin },
    });
    assert.equal(res.status, 404);
    assert.match(await res.text(), /already ended/);
    assert.equal(await reasonOf(stale), "idle_timeout");
    // "Sign out all other devices": the live one is signed out everywhere, the idle one expired.
    const others = await t.request("/account/sessions/revoke-others", {
      method: "POST",
      headers: { origin: t.origin },
    });
    assert.equal(others.status, 303);
    assert.equal(await reasonOf(activeDevice), "signed_out_everywhere");
    assert.equal(await reasonOf(idleDevice), "idle_timeout");
  } finally {
    t.close();
  }
});
