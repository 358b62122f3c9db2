import assert from "node:assert/strict";
import { CookieJar, GOOD_PASSWORD, type TestApp, testApp } from "../helpers.ts";
import { linkIn, startMail, type TestMail, tokenIn } from "../mail_helpers.ts";
import * as keys from "../../kv/keys.ts";
import type { User } from "../../kv/users.ts";
import { addWorkspace, newWorkspace } from "../../kv/workspaces.ts";

async function userOf(t: TestApp, email: string): Promise<User> {
  const id = (await t.kv.get<string>(keys.userByEmail(email.toLowerCase()))).value!;
  return (await t.kv.get<User>(keys.user(id))).value!;
}

/** Opens a verification link like a mail client would (no session) and returns the page. */
async function openAndConfirm(t: TestApp, link: string, jar = new CookieJar()) {
  const page = await t.app.request(link, { headers: { cookie: jar.header() } }, {
    remoteAddr: { hostname: "198.51.100.3" },
  });
  const html = await page.text();
  const token = new URL(link).searchParams.get("token")!;
  const post = () =>
    t.app.request(`${t.origin}/verify-email`, {
      method: "POST",
      headers: {
        origin: t.origin,
        cookie: jar.header(),
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({ token }),
    }, { remoteAddr: { hostname: "198.51.100.3" } });
  return { page, html, post };
}

async function verifyMail(mail: TestMail, to: string, kind = "verify_email") {
  return await mail.waitFor((m) => m.kind === kind && m.to === to);
}

Deno.test("sign-up sends a verification mail; GET shows a button and changes nothing; POST verifies once", async () => {
  const t = await testApp();
  const mail = startMail(t);
  try {
    const { email } = await t.signup();
    const m = await verifyMail(mail, email);
    assert.match(m.text, /expires in 24 hours/);
    const before = await (await t.request("/account")).text();
    assert.match(before, /not verified yet/);
    assert.match(before, /action="\/account\/verify-email"/);

    const { page, html, post } = await openAndConfirm(t, linkIn(m));
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("referrer-policy"), "no-referrer");
    assert.match(html, /Confirm my email/);
    assert.match(html, /<form method="post" action="\/verify-email">/);
    assert.equal((await userOf(t, email)).emailVerifiedAt, null, "a GET changes nothing");

    const res = await post();
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/verify-email?status=verified");
    assert.ok((await userOf(t, email)).emailVerifiedAt);
    assert.match(await (await t.request("/account")).text(), /class="verified">verified/);

    assert.equal((await post()).status, 410, "a used link cannot be used again");
    const again = await openAndConfirm(t, linkIn(m));
    assert.equal(again.page.status, 410);
    const unknown = await openAndConfirm(t, `${t.origin}/verify-email?token=${"B".repeat(43)}`);
    assert.equal(unknown.page.status, 400);
  } finally {
    await mail.close();
  }
});

Deno.test("resend from the account page sends a new link, rate-limited per address with Retry-After", async () => {
  const t = await testApp({ rateLimitEmailPerHour: 3 });
  const mail = startMail(t);
  try {
    const { email } = await t.signup();
    await verifyMail(mail, email);
    // The sign-up mail counts: two resends fit in the hour's three mails.
    for (let i = 0; i < 2; i++) {
      const res = await t.post("/account/verify-email", {});
      assert.equal(res.status, 303);
      assert.equal(res.headers.get("location"), "/account?email=sent");
    }
    const limited = await t.post("/account/verify-email", {});
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get("retry-after")) > 0);
    await mail.waitForCount((x) => x.to === email, 3);
    const notice = await (await t.request("/account?email=sent")).text();
    assert.match(notice, /We sent you a new confirmation link/);
  } finally {
    await mail.close();
  }
});

Deno.test("EMAIL_VERIFICATION_REQUIRED keeps unverified accounts out of shared workspaces only", async () => {
  for (const required of [true, false]) {
    const t = await testApp({ emailVerificationRequired: required });
    const mail = startMail(t);
    try {
      const { email, location } = await t.signup();
      const user = await userOf(t, email);
      const shared = newWorkspace({
        name: "Team",
        slug: `team-${required}`,
        ownerId: user.id,
        personal: false,
      });
      await addWorkspace(t.kv.atomic(), shared).commit();
      assert.equal((await t.request(location)).status, 200, "the personal workspace always opens");
      const res = await t.request(`/w/${shared.slug}`);
      assert.equal(res.status, required ? 403 : 200);
      if (required) assert.match(await res.text(), /Confirm your email address first/);

      const { post } = await openAndConfirm(t, linkIn(await verifyMail(mail, email)));
      assert.equal((await post()).status, 303);
      assert.equal((await t.request(`/w/${shared.slug}`)).status, 200);
    } finally {
      await mail.close();
    }
  }
});

Deno.test("email change: link to the new address, notice to the old; changes only on confirmation, with the index", async () => {
  const t = await testApp();
  const mail = startMail(t);
  try {
    const { email: old } = await t.signup();
    const fresh = `new-${crypto.randomUUID().slice(0, 8)}@example.com`;
    const wrong = await t.post("/account/email", { email: fresh, password: "wrong-password-1" });
    assert.equal(wrong.status, 422);
    assert.match(await wrong.text(), /password is incorrect/);

    // A reset link issued before the change must not survive it.
    await t.post("/password/forgot", { email: old });
    const reset = await mail.waitFor((m) => m.kind === "password_reset");

    const res = await t.post("/account/email", { email: fresh, password: GOOD_PASSWORD });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/account?email=change_sent");
    const confirm = await verifyMail(mail, fresh, "verify_new_email");
    const notice = await mail.waitFor((m) => m.kind === "email_change_notice");
    assert.equal(notice.to, old);
    assert.ok(notice.text.includes(fresh));
    assert.equal((await userOf(t, old)).email, old, "nothing changes before confirmation");

    const { post } = await openAndConfirm(t, linkIn(confirm), t.jar);
    const done = await post();
    assert.equal(done.status, 303);
    assert.equal(done.headers.get("location"), "/account?email=changed");
    const user = await userOf(t, fresh);
    assert.equal(user.email, fresh);
    assert.ok(user.emailVerifiedAt);
    assert.equal((await t.kv.get(keys.userByEmail(old))).value, null, "old index entry deleted");

    // Sign in with the new address works; the old one is unknown.
    const login = (email: string) =>
      t.app.request(`${t.origin}/login`, {
        method: "POST",
        headers: { origin: t.origin, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ email, password: GOOD_PASSWORD }),
      }, { remoteAddr: { hostname: "203.0.113.5" } });
    assert.equal((await login(fresh)).status, 303);
    assert.equal((await login(old)).status, 401);

    // The reset link sent to the old address is now stale.
    const jar = new CookieJar();
    const go = async (p: string) => {
      const r = await t.app.request(new URL(p, t.origin).href, {
        headers: { cookie: jar.header() },
      });
      jar.update(r);
      return r;
    };
    await go(linkIn(reset));
    assert.equal((await go("/password/reset")).status, 410);
    assert.ok(tokenIn(reset).length === 43);
  } finally {
    await mail.close();
  }
});

Deno.test("email change to an address another account took meanwhile fails with 409 and changes nothing", async () => {
  const t = await testApp();
  const mail = startMail(t);
  try {
    const { email: mine } = await t.signup();
    const target = `taken-${crypto.randomUUID().slice(0, 8)}@example.com`;
    assert.equal(
      (await t.post("/account/email", { email: target, password: GOOD_PASSWORD })).status,
      303,
    );
    const confirm = await verifyMail(mail, target, "verify_new_email");
    const other = await testApp({}, t.kv); // a second browser signs up with the address
    await other.signup(target);
    const { post } = await openAndConfirm(t, linkIn(confirm));
    const res = await post();
    assert.equal(res.status, 409);
    assert.equal((await userOf(t, mine)).email, mine);
    assert.notEqual((await userOf(t, target)).id, (await userOf(t, mine)).id, "index untouched");
  } finally {
    await mail.close();
  }
});

Deno.test("email change: a password reset (the notice's advice) cancels a pending change", async () => {
  const t = await testApp();
  const mail = startMail(t);
  try {
    const { email: victim } = await t.signup();
    const attacker = `attacker-${crypto.randomUUID().slice(0, 8)}@example.com`;
    // Someone holding the session and password asks to move the account to their address.
    assert.equal(
      (await t.post("/account/email", { email: attacker, password: GOOD_PASSWORD })).status,
      303,
    );
    const confirm = await verifyMail(mail, attacker, "verify_new_email");
    await mail.waitFor((m) => m.kind === "email_change_notice" && m.to === victim);

    // The owner follows the notice: resets the password by email.
    await t.post("/password/forgot", { email: victim });
    const reset = await mail.waitFor((m) => m.kind === "password_reset" && m.to === victim);
    const jar = new CookieJar();
    const go = async (path: string, init: RequestInit = {}) => {
      const headers = new Headers(init.headers);
      headers.set("cookie", jar.header());
      const r = await t.app.request(new URL(path, t.origin).href, { ...init, headers }, {
        remoteAddr: { hostname: "198.51.100.9" },
      });
      jar.update(r);
      return r;
    };
    await go(linkIn(reset));
    const done = await go("/password/reset", {
      method: "POST",
      headers: { origin: t.origin, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        password: "amber-lantern-42-otters",
        confirm: "amber-lantern-42-otters",
      }),
    });
    assert.equal(done.status, 303);

    // The attacker's confirmation link is now dead, with no session needed to find out.
    const { post } = await openAndConfirm(t, linkIn(confirm));
    assert.equal((await post()).status, 410);
    assert.equal((await userOf(t, victim)).email, victim);
    assert.equal((await t.kv.get(keys.userByEmail(attacker))).value, null);
  } finally {
    await mail.close();
  }
});

Deno.test("password reset: the Unicode and punycode forms of one domain are one mailbox", async () => {
  const t = await testApp();
  const mail = startMail(t);
  try {
    await t.signup("reset-idn@例え.テスト");
    assert.equal(
      (await t.post("/password/forgot", { email: "reset-idn@xn--r8jz45g.xn--zckzah" })).status,
      200,
    );
    const m = await mail.waitFor((x) => x.kind === "password_reset");
    assert.equal(m.to, "reset-idn@例え.テスト", "mail goes to the stored address");
    // A fullwidth look-alike of the domain is not the same mailbox.
    await t.signup("fw@example.com");
    await t.post("/password/forgot", { email: "fw@ｅｘａｍｐｌｅ.com" });
    await mail.waitForCount(
      (x) => x.kind === "password_reset" && x.to === "fw@example.com",
      0,
      200,
    );
  } finally {
    await mail.close();
  }
});
