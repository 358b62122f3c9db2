import assert from "node:assert/strict";
import { CookieJar, GOOD_PASSWORD, type TestApp, testApp } from "../helpers.ts";
import { linkIn, startMail, type TestMail, tokenIn } from "../mail_helpers.ts";
import * as keys from "../../kv/keys.ts";
import type { User } from "../../kv/users.ts";
import type { ResetToken } from "../../kv/email_tokens.ts";
import { sha256Hex } from "../../lib/crypto.ts";
import { hashPassword } from "../../lib/password.ts";

const NEW_PASSWORD = "amber-lantern-42-otters";

async function resetMail(t: TestApp, mail: TestMail, email: string, before = new Set<string>()) {
  const res = await t.post("/password/forgot", { email });
  assert.equal(res.status, 200);
  return await mail.waitFor((m) =>
    m.kind === "password_reset" && m.to === email && !before.has(m.id)
  );
}

/** Opens a reset link in a fresh browser-like jar; returns that jar's request helper. */
async function openLink(t: TestApp, link: string) {
  const jar = new CookieJar();
  const go = async (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (jar.cookies.size) headers.set("cookie", jar.header());
    const res = await t.app.request(new URL(path, t.origin).href, { ...init, headers }, {
      remoteAddr: { hostname: "198.51.100.7" },
    });
    jar.update(res);
    return res;
  };
  const first = await go(link);
  return { first, go, jar };
}

function submit(
  go: (p: string, i?: RequestInit) => Promise<Response>,
  password: string,
  confirm = password,
) {
  return go("/password/reset", {
    method: "POST",
    headers: {
      origin: "http://localhost:8000",
      "content-type": "application/x-www-form-urlencoded",
    },
    body: new URLSearchParams({ password, confirm }),
  });
}

async function login(t: TestApp, email: string, password: string) {
  const jar = new CookieJar();
  const res = await t.app.request(`${t.origin}/login`, {
    method: "POST",
    headers: { origin: t.origin, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ email, password }),
  }, { remoteAddr: { hostname: "203.0.113.9" } });
  jar.update(res);
  return res.status;
}

Deno.test("reset by email: link → cookie → new password; sessions revoked, notice sent, token single use", async () => {
  const t = await testApp();
  const mail = startMail(t);
  try {
    const { email } = await t.signup();
    const oldSession = t.jar.header();
    const m = await resetMail(t, mail, email);
    assert.match(m.text, /expires in 60 minutes/);
    const link = linkIn(m);
    assert.ok(link.startsWith("http://localhost:8000/password/reset?token="));

    const { first, go, jar } = await openLink(t, link);
    assert.equal(first.status, 303);
    assert.equal(first.headers.get("location"), "/password/reset");
    assert.equal(first.headers.get("referrer-policy"), "no-referrer");
    const cookie = first.headers.getSetCookie().find((c) => c.startsWith("lodge_reset="))!;
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /Path=\/password\/reset/);
    assert.match(cookie, /Max-Age=900/);
    assert.ok(jar.cookies.has("lodge_reset"));

    const form = await go("/password/reset");
    assert.equal(form.status, 200);
    assert.equal(form.headers.get("referrer-policy"), "no-referrer");
    const html = await form.text();
    assert.ok(!html.includes(tokenIn(m)), "the page never carries the token");
    assert.match(html, /name="confirm"/);

    const mismatch = await submit(go, NEW_PASSWORD, NEW_PASSWORD + "x");
    assert.equal(mismatch.status, 422);
    assert.ok(!(await mismatch.text()).includes(NEW_PASSWORD), "passwords are never echoed");

    const done = await submit(go, NEW_PASSWORD);
    assert.equal(done.status, 303);
    assert.equal(done.headers.get("location"), "/login?m=password_reset");
    const loginPage = await (await t.request("/login?m=password_reset")).text();
    assert.match(loginPage, /Your password was changed/);

    // Every session of the user is gone, including the one from sign-up.
    const account = await t.request("/account", { headers: { cookie: oldSession } });
    assert.equal(account.status, 303);
    assert.match(account.headers.get("location")!, /^\/login/);
    assert.equal(await login(t, email, GOOD_PASSWORD), 401);
    assert.equal(await login(t, email, NEW_PASSWORD), 303);
    const id = (await t.kv.get<string>(keys.userByEmail(email))).value!;
    assert.ok(
      (await t.kv.get<User>(keys.user(id))).value!.emailVerifiedAt,
      "the mailbox is proven",
    );

    const notice = await mail.waitFor((x) => x.kind === "password_changed" && x.to === email);
    assert.match(notice.text, /password was changed/i);

    // Reuse of the same link: 410 with a way to start again.
    const again = await openLink(t, link);
    const reused = await again.go("/password/reset");
    assert.equal(reused.status, 410);
    const reusedHtml = await reused.text();
    assert.match(reusedHtml, /already been used/);
    assert.match(reusedHtml, /href="\/password\/forgot"/);
    // A form opened before the reset and submitted after it is refused the same way.
    const late = await openLink(t, link);
    assert.equal((await submit(late.go, "another-fine-password-9")).status, 410);
  } finally {
    await mail.close();
  }
});

Deno.test("reset and change refuse the account's own email address and name as the new password", async () => {
  const t = await testApp();
  const mail = startMail(t);
  try {
    const { email } = await t.signup(undefined, "Grace Hopper");
    // Change, signed in: the stored address and name are known.
    for (
      const [password, what] of [
        [email.toUpperCase(), /is your email address/],
        [" grace hopper ", /is your name/],
      ] as const
    ) {
      const res = await t.post("/account/password", { current: GOOD_PASSWORD, password });
      assert.equal(res.status, 422, password);
      assert.match(await res.text(), what);
    }
    // Reset, signed out: the account is the one the link was mailed for.
    const { go } = await openLink(t, linkIn(await resetMail(t, mail, email)));
    const local = email.slice(0, email.indexOf("@"));
    for (
      const [password, what] of [
        [email, /is your email address/],
        [local, /is the part of your email address before the @/],
        ["GRACE HOPPER", /is your name/],
      ] as const
    ) {
      const res = await submit(go, password);
      assert.equal(res.status, 422, password);
      assert.match(await res.text(), what);
    }
    assert.equal((await submit(go, NEW_PASSWORD)).status, 303);
  } finally {
    await mail.close();
  }
});

Deno.test("unknown, malformed and expired reset tokens answer 400/410 and change nothing", async () => {
  const t = await testApp();
  const mail = startMail(t);
  try {
    const { email } = await t.signup();
    const unknown = await openLink(t, `/password/reset?token=${"A".repeat(43)}`);
    assert.equal((await unknown.go("/password/reset")).status, 400);
    const malformed = await openLink(t, "/password/reset?token=%3Cscript%3E");
    assert.equal(malformed.first.status, 303);
    assert.equal((await malformed.go("/password/reset")).status, 400);
    assert.equal((await t.request("/password/reset")).status, 400, "no cookie at all");

    const m = await resetMail(t, mail, email);
    const key = keys.resetToken(sha256Hex(tokenIn(m)));
    const stored = (await t.kv.get<ResetToken>(key)).value!;
    assert.equal(stored.expiresAt - stored.createdAt, 3600_000);
    await t.kv.set(key, { ...stored, expiresAt: Date.now() - 1 });
    const expired = await openLink(t, linkIn(m));
    const page = await expired.go("/password/reset");
    assert.equal(page.status, 410);
    assert.match(await page.text(), /expired/);
    const expiredPost = await openLink(t, linkIn(m));
    assert.equal((await submit(expiredPost.go, NEW_PASSWORD)).status, 410);
    assert.equal(await login(t, email, GOOD_PASSWORD), 303, "the password did not change");
  } finally {
    await mail.close();
  }
});

Deno.test("two concurrent submissions of one reset token: exactly one succeeds", async () => {
  const t = await testApp();
  const mail = startMail(t);
  try {
    const { email } = await t.signup();
    const m = await resetMail(t, mail, email);
    const a = await openLink(t, linkIn(m));
    const b = await openLink(t, linkIn(m));
    const statuses = (await Promise.all([
      submit(a.go, NEW_PASSWORD),
      submit(b.go, "second-candidate-pass-77"),
    ])).map((r) => r.status).sort();
    assert.deepEqual(statuses, [303, 410]);
    const won = (await login(t, email, NEW_PASSWORD)) === 303 ? 1 : 0;
    const won2 = (await login(t, email, "second-candidate-pass-77")) === 303 ? 1 : 0;
    assert.equal(won + won2, 1);
    await mail.waitForCount((x) => x.kind === "password_changed", 1);
  } finally {
    await mail.close();
  }
});

Deno.test("a reset uses up every other outstanding reset link of the user", async () => {
  const t = await testApp();
  const mail = startMail(t);
  try {
    const { email } = await t.signup();
    const first = await resetMail(t, mail, email);
    const second = await resetMail(t, mail, email, new Set([first.id]));
    const a = await openLink(t, linkIn(second));
    assert.equal((await submit(a.go, NEW_PASSWORD)).status, 303);
    const b = await openLink(t, linkIn(first));
    const res = await b.go("/password/reset");
    assert.ok(res.status === 400 || res.status === 410, `got ${res.status}`);
    const bPost = await openLink(t, linkIn(first));
    assert.equal((await submit(bPost.go, "yet-another-password-55")).status, res.status);
  } finally {
    await mail.close();
  }
});

Deno.test("a password change by any code path makes outstanding reset links stale (410)", async () => {
  const t = await testApp();
  const mail = startMail(t);
  try {
    const { email } = await t.signup();
    const m = await resetMail(t, mail, email);
    // Another feature (e.g. POST /account/password) writes a new hash; it knows nothing of resets.
    const id = (await t.kv.get<string>(keys.userByEmail(email)))!.value!;
    const user = (await t.kv.get<User>(keys.user(id))).value!;
    await t.kv.set(keys.user(id), {
      ...user,
      passwordHash: await hashPassword("changed-elsewhere-88"),
    });
    const r = await openLink(t, linkIn(m));
    const page = await r.go("/password/reset");
    assert.equal(page.status, 410);
    assert.match(await page.text(), /password or email address changed/);
    const post = await openLink(t, linkIn(m));
    assert.equal((await submit(post.go, NEW_PASSWORD)).status, 410);
  } finally {
    await mail.close();
  }
});

Deno.test("mail goes to the stored address, never the typed string; case variants find the account, look-alikes nothing", async () => {
  const t = await testApp();
  const mail = startMail(t);
  try {
    await t.signup("Kate@Example.com");
    await t.signup("mi@example.com");
    await t.signup("strasse@example.com");
    await t.signup("\u00e9lodie@example.com");
    const res = await t.post("/password/forgot", { email: "KATE@EXAMPLE.COM" });
    assert.equal(res.status, 200);
    const m = await mail.waitFor((x) => x.kind === "password_reset");
    assert.equal(m.to, "Kate@Example.com");
    // Sign-in takes "\u00c9LODIE@" for "\u00e9lodie@": so does reset, mailing the stored address.
    assert.equal(
      (await t.post("/password/forgot", { email: "\u00c9LODIE@example.com" })).status,
      200,
    );
    const elodie = await mail.waitFor((x) => x.kind === "password_reset" && x.to !== m.to);
    assert.equal(elodie.to, "\u00e9lodie@example.com");

    for (
      const lookAlike of [
        "m\u0131@example.com",
        "stra\u00dfe@example.com",
      ]
    ) {
      const r = await t.post("/password/forgot", { email: lookAlike });
      assert.equal(r.status, 200, lookAlike);
    }
    // A compatibility look-alike (long s: NFKC makes it "sam") is no valid address at all.
    const longS = await t.post("/password/forgot", { email: "\u017fam@example.com" });
    assert.equal(longS.status, 422);
    assert.match(await longS.text(), /uses look-alike characters/);
    let tokens = 0;
    for await (const _ of t.kv.list({ prefix: ["reset_tokens"] })) tokens++;
    assert.equal(tokens, 2, "only Kate's and \u00e9lodie's requests made a token");
    await mail.waitForCount((x) => x.kind === "password_reset", 2);
  } finally {
    await mail.close();
  }
});

Deno.test("forgot: same status, headers and page for known and unknown addresses; timing medians within 50 ms", async () => {
  const t = await testApp({ rateLimitEmailPerHour: 1000, rateLimitIpPerHour: 1000 });
  try {
    await t.signup("known@example.com");
    const norm = (html: string, email: string) =>
      html.replaceAll(email, "EMAIL").replace(/nonce="[^"]*"/g, 'nonce=""');
    const headerShape = (r: Response) =>
      [...r.headers].filter(([k]) =>
        !["content-security-policy", "date", "x-request-id"].includes(k)
      )
        .map(([k, v]) => `${k}: ${v}`).sort().join("\n");
    const known = await t.post("/password/forgot", { email: "known@example.com" });
    const unknown = await t.post("/password/forgot", { email: "nobody@example.com" });
    assert.equal(known.status, unknown.status);
    assert.equal(headerShape(known), headerShape(unknown));
    assert.equal(
      norm(await known.text(), "known@example.com"),
      norm(await unknown.text(), "nobody@example.com"),
    );

    const times = { known: [] as number[], unknown: [] as number[] };
    for (let i = 0; i < 20; i++) {
      for (const kind of ["known", "unknown"] as const) {
        const t0 = performance.now();
        const r = await t.post("/password/forgot", {
          email: kind === "known" ? "known@example.com" : `nobody${i}@example.com`,
        });
        await r.arrayBuffer();
        times[kind].push(performance.now() - t0);
      }
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const diff = Math.abs(median(times.known) - median(times.unknown));
    console.log(
      `forgot medians: known ${median(times.known).toFixed(2)} ms, unknown ${
        median(times.unknown).toFixed(2)
      } ms`,
    );
    assert.ok(diff < 50, `median difference ${diff} ms`);
  } finally {
    t.close();
  }
});

Deno.test("reset form: when only the repeat is wrong, focus goes to the repeat field", async () => {
  const t = await testApp();
  const mail = startMail(t);
  try {
    const { email } = await t.signup();
    const m = await resetMail(t, mail, email);
    const { go } = await openLink(t, linkIn(m));
    const res = await submit(go, NEW_PASSWORD, "something-else-entirely-9");
    assert.equal(res.status, 422);
    const html = await res.text();
    assert.match(html, /do not match/);
    const autofocused = [...html.matchAll(/<input[^>]*autofocus[^>]*>/g)].map((x) => x[0]);
    assert.equal(autofocused.length, 1);
    assert.match(autofocused[0], /name="confirm"/);
  } finally {
    await mail.close();
  }
});
