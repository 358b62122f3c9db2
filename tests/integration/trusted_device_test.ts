/**
 * Malicious lockout: strangers' failed sign-ins must not lock an account's owner out of the
 * browser they signed in with (kv/devices.ts), while untrusted clients keep the shared limits.
 */
import assert from "node:assert/strict";
import { GOOD_PASSWORD, type TestApp, testApp } from "../helpers.ts";
import { trustedTokenFor } from "../../kv/devices.ts";
import { sha256Hex } from "../../lib/crypto.ts";
import { deviceCookieName } from "../../lib/auth.ts";
import { linkIn, startMail } from "../mail_helpers.ts";

Deno.test("a stranger's failures lock the account for untrusted clients only: its owner's browser still signs in", async () => {
  const t = await testApp({ loginRateLimitMax: 10, loginRateLimitWindow: 900 });
  try {
    const { email } = await t.signup("owner@example.com");
    const ownerDevice = t.jar.cookies.get(deviceCookieName(t.config));
    assert.match(ownerDevice ?? "", /^[A-Za-z0-9_-]{43}$/, "sign-up leaves a device cookie");
    // The owner signs out; the device cookie stays.
    await t.post("/logout", {});
    assert.equal(t.jar.cookies.get(deviceCookieName(t.config)), ownerDevice);

    // A stranger, from many addresses and without the cookie, fails ten times.
    const stranger = await testApp({ loginRateLimitMax: 10, loginRateLimitWindow: 900 }, t.kv);
    for (let i = 0; i < 10; i++) {
      const res = await stranger.post("/login", { email, password: `guess-${i}-password` }, {
        ip: `198.51.100.${i}`,
      });
      assert.equal(res.status, 401);
    }
    // Untrusted clients, even with the right password, wait out the window...
    const locked = await stranger.post("/login", { email, password: GOOD_PASSWORD }, {
      ip: "203.0.113.50",
    });
    assert.equal(locked.status, 429);
    await locked.body?.cancel();
    // ...but the owner's browser is not locked out, from any address.
    const owner = await t.post("/login", { email, password: GOOD_PASSWORD }, { ip: "192.0.2.200" });
    assert.equal(owner.status, 303);
    assert.match(owner.headers.get("location")!, /^\/w\//);
    // The device cookie is renewed, not replaced.
    assert.equal(t.jar.cookies.get(deviceCookieName(t.config)), ownerDevice);
    stranger.close();
  } finally {
    t.close();
  }
});

Deno.test("a trusted browser's own failures are limited too, per account; its trust is for that account only", async () => {
  const t = await testApp({ loginRateLimitMax: 3, loginRateLimitWindow: 900 });
  try {
    const a = await t.signup("a@example.com");
    await t.post("/logout", {});
    const b = await t.signup("b@example.com"); // the same browser creates a second account
    await t.post("/logout", {});
    for (let i = 0; i < 3; i++) {
      const res = await t.post("/login", { email: a.email, password: `wrong-${i}-password` });
      assert.equal(res.status, 401);
    }
    const res = await t.post("/login", { email: a.email, password: GOOD_PASSWORD });
    assert.equal(res.status, 429, "the device's own budget for a@ is spent");
    await res.body?.cancel();
    // b@ from the same browser has its own budget.
    const other = await t.post("/login", { email: b.email, password: GOOD_PASSWORD });
    assert.equal(other.status, 303);

    // A cookie trusted for b@ does not exempt c@, an account it never signed in to.
    const c = await testApp({ loginRateLimitMax: 3, loginRateLimitWindow: 900 }, t.kv);
    const victim = await c.signup("c@example.com");
    c.close();
    await t.post("/logout", {});
    for (let i = 0; i < 3; i++) {
      await (await t.post("/login", { email: victim.email, password: `no-${i}-password` }, {
        ip: `198.18.0.${i}`,
      })).body?.cancel();
    }
    const untrusted = await t.post("/login", { email: victim.email, password: GOOD_PASSWORD }, {
      ip: "198.18.9.9",
    });
    assert.equal(untrusted.status, 429);
    await untrusted.body?.cancel();
  } finally {
    t.close();
  }
});

Deno.test("device cookie: HttpOnly, SameSite=Lax, Path=/, __Host- and Secure over https; KV keeps only hashes", async () => {
  const t = await testApp({ appUrl: new URL("https://lodge.example.com"), secureCookies: true });
  try {
    const res = await t.post("/signup", { email: "secure@example.com", password: GOOD_PASSWORD });
    assert.equal(res.status, 303);
    const line = res.headers.getSetCookie().find((l) => l.startsWith("__Host-lodge_device="));
    assert.ok(line, "the __Host- device cookie is set");
    assert.match(line, /HttpOnly/i);
    assert.match(line, /SameSite=Lax/i);
    assert.match(line, /Path=\//);
    assert.match(line, /Secure/);
    assert.doesNotMatch(line, /Domain=/i);
    const token = line.split(";")[0].split("=")[1];
    let found = 0;
    for await (const e of t.kv.list({ prefix: ["trusted_devices"] })) {
      found++;
      assert.ok(!JSON.stringify(e.key).includes(token) && !JSON.stringify(e.value).includes(token));
      assert.ok(!JSON.stringify(e.key).includes("secure@example.com"));
      const v = e.value as { expiresAt: number };
      assert.ok(v.expiresAt > Date.now() + 100 * 86_400_000);
    }
    assert.equal(found, 1);
  } finally {
    t.close();
  }
});

Deno.test("locked out on a new browser: a password reset there trusts it, so the next sign-in goes through", async () => {
  const t = await testApp({ loginRateLimitMax: 10, loginRateLimitWindow: 900 });
  const mail = startMail(t);
  try {
    const { email } = await t.signup("newlaptop@example.com");
    t.jar.cookies.clear(); // the owner is now on a browser that never signed in
    const stranger = await testApp({ loginRateLimitMax: 10, loginRateLimitWindow: 900 }, t.kv);
    for (let i = 0; i < 10; i++) {
      await (await stranger.post("/login", { email, password: `guess-${i}-password` }, {
        ip: `198.51.100.${i}`,
      })).body?.cancel();
    }
    stranger.close();
    const locked = await t.post("/login", { email, password: GOOD_PASSWORD });
    assert.equal(locked.status, 429);
    await locked.body?.cancel();

    assert.equal((await t.post("/password/forgot", { email })).status, 200);
    const m = await mail.waitFor((x) => x.kind === "password_reset" && x.to === email);
    assert.equal((await t.request(linkIn(m), { redirect: "manual" })).status, 303);
    const NEW = "copper-kettle-77-meadow";
    const reset = await t.post("/password/reset", { password: NEW, confirm: NEW });
    assert.equal(reset.status, 303);
    assert.ok(t.jar.cookies.has(deviceCookieName(t.config)), "the reset leaves a device cookie");
    const signIn = await t.post("/login", { email, password: NEW });
    assert.equal(signIn.status, 303, "the browser that proved the mailbox is not locked out");
  } finally {
    await mail.close();
  }
});

/** Two browsers of one person, each with its own jar, sharing one app and KV. */
async function twoBrowsers(limit = 10) {
  const a = await testApp({ loginRateLimitMax: limit, loginRateLimitWindow: 900 });
  const b = await testApp({ loginRateLimitMax: limit, loginRateLimitWindow: 900 }, a.kv);
  return { a, b, close: () => (b.close(), a.close()) };
}

/** Ten failures from strangers at ten addresses: the account is locked for untrusted clients. */
async function lockOut(t: TestApp, email: string, limit = 10) {
  const stranger = await testApp({ loginRateLimitMax: limit, loginRateLimitWindow: 900 }, t.kv);
  for (let i = 0; i < limit; i++) {
    await (await stranger.post("/login", { email, password: `guess-${i}-password` }, {
      ip: `198.51.100.${i}`,
    })).body?.cancel();
  }
  stranger.close();
}

async function signInStatus(t: TestApp, email: string, password = GOOD_PASSWORD) {
  const res = await t.post("/login", { email, password });
  await res.body?.cancel();
  return res.status;
}

Deno.test("a device cookie the browser brought is never trusted: the server mints its own (no fixation)", async () => {
  const t = await testApp({ loginRateLimitMax: 10, loginRateLimitWindow: 900 });
  try {
    const planted = "F".repeat(43);
    const name = deviceCookieName(t.config);
    t.jar.cookies.set(name, planted);
    const { email } = await t.signup("fixated@example.com");
    const minted = t.jar.cookies.get(name)!.split(".");
    assert.notEqual(minted[0], planted, "sign-up mints a token of its own");
    // Sign-in from a browser carrying only the planted token: it too gets a fresh one.
    await t.post("/logout", {});
    t.jar.cookies.set(name, planted);
    assert.equal(await signInStatus(t, email), 303);
    const after = t.jar.cookies.get(name)!.split(".");
    assert.notEqual(after[0], planted);
    assert.ok(after.includes(planted), "other tokens are kept (harmless: nothing trusts them)");
    // The planted token buys nothing once the account is locked.
    await t.post("/logout", {});
    await lockOut(t, email);
    const attacker = await testApp({ loginRateLimitMax: 10, loginRateLimitWindow: 900 }, t.kv);
    attacker.jar.cookies.set(name, planted);
    assert.equal(await signInStatus(attacker, email), 429);
    attacker.close();
    // The owner's browser, holding the minted token, still gets in.
    assert.equal(await signInStatus(t, email), 303);
  } finally {
    t.close();
  }
});

Deno.test("a password change or 'sign out everywhere' drops every other browser's trust, and keeps this one's", async () => {
  for (const action of ["password", "revoke-others"] as const) {
    const { a, b, close } = await twoBrowsers();
    try {
      const { email } = await a.signup(`change-${action}@example.com`);
      assert.equal(await signInStatus(b, email), 303); // the thief's (or old laptop's) browser
      let password = GOOD_PASSWORD;
      if (action === "password") {
        password = "brand-new-passphrase-31";
        const res = await a.post("/account/password", { current: GOOD_PASSWORD, password });
        assert.equal(res.status, 303);
        await res.body?.cancel();
      } else {
        const res = await a.post("/account/sessions/revoke-others", {});
        assert.equal(res.status, 303);
        await res.body?.cancel();
      }
      await a.post("/logout", {});
      await lockOut(a, email);
      assert.equal(await signInStatus(b, email, password), 429, `${action}: b kept no budget`);
      assert.equal(await signInStatus(a, email, password), 303, `${action}: a still gets in`);
      let records = 0;
      for await (const _ of a.kv.list({ prefix: ["trusted_devices"] })) records++;
      assert.equal(records, 1, "only a's token is left (renewed by its sign-in)");
    } finally {
      close();
    }
  }
});

Deno.test("trust follows the user: kept across an email change, never inherited by a new account at an old address", async () => {
  const t = await testApp({ loginRateLimitMax: 10, loginRateLimitWindow: 900 });
  try {
    const { email } = await t.signup("formerly@example.com");
    const token = t.jar.cookies.get(deviceCookieName(t.config))!;
    const userId = (await t.kv.get<string>(["users_by_email", "formerly@example.com"])).value!;
    assert.equal(await trustedTokenFor(t.kv, "formerly@example.com", [token]), token);
    // The address moves to another key (as a confirmed email change writes it): trust follows.
    await t.kv.atomic().delete(["users_by_email", "formerly@example.com"])
      .set(["users_by_email", "moved@example.com"], userId).commit();
    assert.equal(await trustedTokenFor(t.kv, "moved@example.com", [token]), token);
    // Someone else signs up at the old address: the old browser has no budget there.
    const other = await testApp({}, t.kv);
    await other.signup("formerly@example.com");
    other.close();
    assert.equal(await trustedTokenFor(t.kv, "formerly@example.com", [token]), null);
    await lockOut(t, "formerly@example.com");
    await t.post("/logout", {});
    assert.equal(await signInStatus(t, email), 429);
  } finally {
    t.close();
  }
});

Deno.test("a stolen session cannot mint itself sign-in budgets: 'sign out all other devices' gives no new trust", async () => {
  const { a, b, close } = await twoBrowsers(3);
  try {
    const { email } = await a.signup("stolen@example.com");
    // The thief copies only the session cookie into a browser of their own.
    b.jar.cookies.set("lodge_session", a.jar.cookies.get("lodge_session")!);
    await lockOut(a, email, 3);
    for (let round = 0; round < 3; round++) {
      const res = await b.post("/account/sessions/revoke-others", {});
      assert.equal(res.status, 303);
      await res.body?.cancel();
      assert.equal(b.jar.cookies.get(deviceCookieName(b.config)), undefined, "no token minted");
      assert.equal(await signInStatus(b, email, `guess-${round}-password`), 429);
    }
  } finally {
    close();
  }
});

Deno.test("signing one session out from another device drops that browser's trust too (a lost laptop)", async () => {
  const { a, b, close } = await twoBrowsers();
  try {
    const { email } = await a.signup("lostlaptop@example.com");
    assert.equal(await signInStatus(b, email), 303); // the laptop, later lost
    const page = await (await a.request("/account/sessions")).text();
    const ids = [...page.matchAll(/\/account\/sessions\/([A-Za-z0-9]+)\/revoke/g)].map((m) => m[1]);
    const mine = a.jar.cookies.get("lodge_session")!;
    assert.equal(ids.length, 2);
    // The laptop's session is the one whose token is not this browser's.
    const userId = (await a.kv.get<string>(["users_by_email", email])).value!;
    let revoked = false;
    for (const id of ids) {
      const tokenHash = (await a.kv.get<string>(["user_sessions", userId, id])).value;
      if (tokenHash && tokenHash !== sha256Hex(mine)) {
        const res = await a.post(`/account/sessions/${id}/revoke`, {});
        assert.equal(res.status, 303);
        await res.body?.cancel();
        revoked = true;
      }
    }
    assert.ok(revoked);
    await a.post("/logout", {});
    await lockOut(a, email);
    assert.equal(await signInStatus(b, email), 429, "the lost laptop kept no budget");
    assert.equal(await signInStatus(a, email), 303, "the owner's own browser still gets in");
  } finally {
    close();
  }
});

Deno.test("a page opened after being signed out elsewhere says why on the sign-in page", async () => {
  const { a, b, close } = await twoBrowsers();
  try {
    const { email, location } = await a.signup("why@example.com");
    assert.equal(await signInStatus(b, email), 303);
    // From a: sign out all other devices. b's next page load says so.
    await (await a.post("/account/sessions/revoke-others", {})).body?.cancel();
    let res = await b.request(location, { redirect: "manual" });
    assert.equal(res.status, 303);
    const to = new URL(res.headers.get("location")!, b.origin);
    assert.equal(to.pathname, "/login");
    assert.equal(to.searchParams.get("m"), "revoked");
    assert.equal(to.searchParams.get("next"), location);
    assert.match(
      await (await b.request(to.pathname + to.search)).text(),
      /signed out from another device/,
    );
    // b signs in again; a changes the password: b learns that instead.
    assert.equal(await signInStatus(b, email), 303);
    const NEW = "sturdy-harbour-lamp-58";
    await (await a.post("/account/password", { current: GOOD_PASSWORD, password: NEW })).body
      ?.cancel();
    res = await b.request("/account", { redirect: "manual" });
    assert.equal(
      new URL(res.headers.get("location")!, b.origin).searchParams.get("m"),
      "password_changed",
    );
    await res.body?.cancel();
  } finally {
    close();
  }
});
